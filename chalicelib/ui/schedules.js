// A workflow's schedules on its history page: each with its next fire times, pause/resume and delete,
// and a form to create one (expression, time zone, overlap). Like triggers.js, every call carries the
// definition's namespace (`scope`), and the list is read again after each action.

import { api, ApiError } from './api.js';
import { announce, clear, h, messageBox, when } from './dom.js';

const enc = encodeURIComponent;
const OVERLAPS = [['skip', 'skip (start nothing while a run is open)'],
  ['buffer_one', 'buffer_one (queue one run)'], ['allow', 'allow (always start)']];

// GET .../schedules: null when the caller may not read them (the page shows nothing), an error note for
// any other failure, else the list.
export async function loadSchedules(name, scope = '') {
  try {
    const body = await api.get(`/definitions/${enc(name)}/schedules${scope}`);
    return { items: Array.isArray(body) ? body : [] };
  } catch (error) {
    if (error instanceof ApiError && [403, 404, 405].includes(error.status)) return null;
    return { error: error?.message || String(error) };
  }
}

export function schedulesSection(name, scope, schedules) {
  if (!schedules) return null;
  const base = `/definitions/${enc(name)}/schedules`;
  const message = messageBox('schedules-message');
  const list = h('div', { id: 'schedules-list' });
  const form = createForm();
  const section = h('section', { 'aria-labelledby': 'schedules-title', id: 'schedules' },
    h('h2', { id: 'schedules-title' }, 'Schedules'), message.element, list,
    h('div', { id: 'schedule-create' }, h('h3', {}, 'Create a schedule'), form));
  draw(schedules);

  async function act(button, work, done) {
    button.disabled = true;
    message.clear();
    try {
      await work();
      message.show(done, 'success');
      announce(done);
      draw(await loadSchedules(name, scope));
      return true;
    } catch (error) {
      message.show(error instanceof ApiError ? error.message : String(error), 'error');
      return false;
    } finally {
      button.disabled = false;
    }
  }

  function createForm() {
    const element = h('form', { id: 'schedule-form' },
      h('p', {}, h('label', { for: 'schedule-expression' }, 'Expression'), ' ',
        h('input', { id: 'schedule-expression', name: 'expression', required: true, size: 32, maxlength: 256,
          placeholder: 'cron(0 9 ? * MON-FRI *)', autocomplete: 'off', 'aria-describedby': 'schedule-expression-hint' }),
        h('span', { id: 'schedule-expression-hint', class: 'hint' }, ' rate(5 minutes) or cron(minutes hours day-of-month month day-of-week year)')),
      h('p', {}, h('label', { for: 'schedule-timezone' }, 'Time zone'), ' ',
        h('input', { id: 'schedule-timezone', name: 'timezone', value: 'UTC', size: 20, autocomplete: 'off' })),
      h('p', {}, h('label', { for: 'schedule-overlap' }, 'Overlap'), ' ',
        h('select', { id: 'schedule-overlap', name: 'overlap' }, OVERLAPS.map(([value, text]) => h('option', { value }, text)))),
      h('button', { type: 'submit' }, 'Create schedule'));
    element.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { expression: element.expression.value.trim(), timezone: element.timezone.value.trim() || 'UTC',
        overlap: element.overlap.value };
      const made = await act(element.querySelector('button'), () => api.post(`${base}${scope}`, body),
        `Schedule ${body.expression} created.`);
      if (made) element.expression.value = '';
    });
    return element;
  }

  function draw(current) {
    if (current?.error) {
      clear(list, h('p', { id: 'schedules-error', class: 'hint' }, `Schedules could not be read: ${current.error}`));
      return;
    }
    const items = (current?.items || []).filter((s) => s && typeof s.id === 'string');
    if (!items.length) {
      clear(list, h('p', { id: 'no-schedules' }, 'No schedules.'));
      return;
    }
    clear(list, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Expression', 'Time zone', 'State', 'Next runs', ''].map(
        (c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
      h('tbody', {}, items.map((schedule) => {
        const id = schedule.id;
        const enabled = schedule.state === 'enabled';
        const next = (Array.isArray(schedule.next_runs) ? schedule.next_runs : []).slice(0, 3);
        return h('tr', { dataset: { schedule: id, state: String(schedule.state) } },
          h('th', { scope: 'row' }, h('code', {}, String(schedule.expression))),
          h('td', {}, String(schedule.timezone)),
          h('td', {}, `${schedule.state}, overlap ${schedule.overlap}`,
            schedule.last_error ? h('span', { class: 'hint' }, ` — last error: ${schedule.last_error}`) : null),
          h('td', {}, next.length ? h('ul', { class: 'next-runs' }, next.map((at) => h('li', {}, when(at)))) : '—'),
          h('td', {},
            h('button', { type: 'button', class: 'toggle-schedule', onclick: (event) => act(event.currentTarget,
              () => api.post(`${base}/${enc(id)}/${enabled ? 'pause' : 'resume'}${scope}`, {}),
              `Schedule ${schedule.expression} ${enabled ? 'paused' : 'resumed'}.`) },
            `${enabled ? 'Pause' : 'Resume'} ${id}`), ' ',
            h('button', { type: 'button', class: 'delete-schedule', onclick: (event) => {
              if (!window.confirm(`Delete the schedule ${schedule.expression}? It starts nothing from now on.`)) return undefined;
              return act(event.currentTarget, () => api.delete(`${base}/${enc(id)}${scope}`),
                `Schedule ${schedule.expression} deleted.`);
            } }, `Delete ${id}`)));
      }))));
  }

  return section;
}
