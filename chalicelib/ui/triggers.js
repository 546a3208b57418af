// A workflow's webhook triggers on its overview page: the list (metadata only, as the API answers it),
// create, disable/enable, rotate and delete. A new trigger's URL and signing secret, and a rotated
// secret, are shown once in a box the page never draws again: the API has no way to read them back.

import { API_BASE, api, ApiError } from './api.js';
import { announce, clear, h, messageBox, when } from './dom.js';

const enc = encodeURIComponent;

// `scope`: the query that names the definition's namespace ('' for none), added to every call.
export function triggersSection(name, scope = '') {
  const base = `/definitions/${enc(name)}/triggers`;
  const message = messageBox('triggers-message');
  const once = h('div', { id: 'trigger-secret', hidden: true });
  const list = h('div', { id: 'triggers-list' }, h('p', {}, 'Loading…'));
  const section = h('section', { id: 'triggers', class: 'panel', 'aria-labelledby': 'triggers-title' },
    h('h2', { id: 'triggers-title' }, 'Webhook triggers'),
    h('p', {}, 'A signed POST to a trigger\'s URL starts this workflow with the request body as input.'),
    message.element, once, list,
    h('button', { type: 'button', id: 'create-trigger', onclick: (event) => act(event, async () => {
      const created = await api.post(`${base}${scope}`, {});
      showOnce(once, 'New trigger', created, true);
      announce('Trigger created: copy its URL and secret now.');
    }) }, 'Create a trigger'));

  async function act(event, work) {
    const button = event.currentTarget;
    button.disabled = true;
    message.clear();
    try {
      await work();
      await load();
    } catch (error) {
      message.show(error instanceof ApiError ? error.message : String(error), 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function load() {
    let triggers;
    try {
      triggers = await api.get(`${base}${scope}`);
    } catch (error) {
      // A caller who may not read triggers sees no section content; other failures are a note.
      clear(list, h('p', {}, error instanceof ApiError && [403, 404].includes(error.status)
        ? 'Triggers are not available to you.' : `Triggers could not be loaded: ${error?.message || error}`));
      return;
    }
    if (!triggers.length) {
      clear(list, h('p', { id: 'no-triggers' }, 'No triggers yet.'));
      return;
    }
    clear(list, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Trigger', 'State', 'Limit', 'Pin', 'Created', 'Last fired', ''].map(
        (c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
      h('tbody', {}, triggers.map((t) => h('tr', { dataset: { trigger: t.id, enabled: String(t.enabled) } },
        h('th', { scope: 'row' }, h('code', {}, t.id), t.description ? ` ${t.description}` : ''),
        h('td', {}, t.enabled ? 'enabled' : 'disabled'),
        h('td', { class: 'num' }, `${t.rate_limit_per_minute}/min`),
        h('td', {}, t.revision ? `revision ${t.revision}` : (t.alias ? `alias ${t.alias}` : 'latest')),
        h('td', {}, when(t.created_at), t.created_by ? ` by ${t.created_by}` : ''),
        h('td', {}, when(t.last_fired_at)),
        h('td', {},
          h('button', { type: 'button', class: 'toggle-trigger', onclick: (event) => act(event, () =>
            api.post(`${base}/${enc(t.id)}/${t.enabled ? 'disable' : 'enable'}${scope}`, {})) },
          t.enabled ? `Disable ${t.id}` : `Enable ${t.id}`), ' ',
          h('button', { type: 'button', class: 'rotate-trigger', onclick: (event) => act(event, async () => {
            const rotated = await api.post(`${base}/${enc(t.id)}/rotate${scope}`, {});
            showOnce(once, `New secret of ${t.id}`, rotated, false);
          }) }, `Rotate ${t.id}`), ' ',
          h('button', { type: 'button', class: 'delete-trigger', onclick: (event) => {
            if (!window.confirm(`Delete trigger ${t.id}? Its URL stops working at once.`)) return undefined;
            return act(event, () => api.delete(`${base}/${enc(t.id)}${scope}`));
          } }, `Delete ${t.id}`)))))));
  }

  load();
  return section;
}

// The one time a URL or secret is on screen; the page forgets it when it is drawn again.
function showOnce(box, title, answer, withUrl) {
  const rows = [];
  if (withUrl) rows.push(h('dt', {}, 'URL'), h('dd', {}, h('code', { id: 'trigger-url' }, `${location.origin}${API_BASE}/hooks/${answer.key}`)));
  rows.push(h('dt', {}, 'Signing secret'), h('dd', {}, h('code', { id: 'trigger-secret-value' }, answer.secret)));
  clear(box, h('div', { class: 'message message-success', role: 'status' },
    h('strong', {}, title), ' — copy these now: they are not shown again.',
    h('dl', { class: 'facts' }, rows)));
  box.hidden = false;
}
