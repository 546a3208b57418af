// A workflow's schedules on its history page: each with its next fire times, pause/resume, a change of
// its expression, time zone or overlap, a backfill of missed runs over a range, and delete; and a form
// to create one. Like triggers.js, every call carries the definition's namespace (`scope`), and the list
// is read again after each action.

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
      draw(await loadSchedules(name, scope)); // the list first: the message then says the page shows the change
      message.show(done, 'success');
      announce(done);
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
            changeForms(schedule), ' ',
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

  // Per schedule, behind a disclosure: change its timing (only the fields that differ are sent) and
  // backfill a past range (one run per fire time in it; the times are UTC).
  function changeForms(schedule) {
    const id = schedule.id;
    const field = (label, control) => h('p', {}, h('label', { for: control.id }, label), ' ', control);
    const expression = h('input', { id: `schedule-edit-expression-${id}`, name: 'expression', required: true, size: 28,
      maxlength: 256, value: String(schedule.expression), autocomplete: 'off' });
    const timezone = h('input', { id: `schedule-edit-timezone-${id}`, name: 'timezone', size: 16,
      value: String(schedule.timezone || 'UTC'), autocomplete: 'off' });
    const overlap = h('select', { id: `schedule-edit-overlap-${id}`, name: 'overlap' },
      OVERLAPS.map(([value, text]) => h('option', { value, selected: value === schedule.overlap }, text)));
    const edit = h('form', { class: 'schedule-edit', dataset: { schedule: id } },
      field(`Expression of ${id}`, expression), field(`Time zone of ${id}`, timezone),
      field(`Overlap of ${id}`, overlap), h('button', { type: 'submit' }, `Save ${id}`));
    edit.addEventListener('submit', (event) => {
      event.preventDefault();
      const wanted = { expression: expression.value.trim(), timezone: timezone.value.trim() || 'UTC', overlap: overlap.value };
      const body = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => value !== schedule[key]));
      if (!Object.keys(body).length) {
        message.show(`Nothing to change in ${schedule.expression}.`, 'info');
        return undefined;
      }
      return act(edit.querySelector('button'), () => api.put(`${base}/${enc(id)}${scope}`, body),
        `Schedule ${wanted.expression} saved.`);
    });
    const from = h('input', { id: `schedule-backfill-from-${id}`, name: 'from', type: 'datetime-local', required: true, step: 1 });
    const to = h('input', { id: `schedule-backfill-to-${id}`, name: 'to', type: 'datetime-local', required: true, step: 1 });
    const backfill = h('form', { class: 'schedule-backfill', dataset: { schedule: id } },
      field(`Backfill from (UTC) for ${id}`, from), field(`Backfill to (UTC) for ${id}`, to),
      h('button', { type: 'submit' }, `Backfill ${id}`));
    backfill.addEventListener('submit', (event) => {
      event.preventDefault();
      // datetime-local has no zone: the form says UTC, so the value is read as UTC.
      const utc = (value) => `${value.length === 16 ? `${value}:00` : value}Z`;
      let outcome = null;
      return act(backfill.querySelector('button'), async () => {
        outcome = await api.post(`${base}/${enc(id)}/backfill${scope}`, { from: utc(from.value), to: utc(to.value) });
      }, `Backfill of ${schedule.expression} done.`).then((done) => {
        if (!done || !outcome) return;
        const runs = Array.isArray(outcome.runs) ? outcome.runs : [];
        const started = runs.filter((r) => r.outcome === 'started').length;
        message.show(`Backfill of ${schedule.expression}: ${runs.length} fire time(s) in the range, `
          + `${started} run(s) started, ${runs.length - started} already had one or did not start.`, 'success');
      });
    });
    return h('details', { class: 'schedule-change' }, h('summary', {}, `Change or backfill ${id}`), edit, backfill);
  }

  return section;
}
