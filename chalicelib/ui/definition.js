// The top of every page of one workflow: its name, facts, active or deactivated state with the
// Deactivate button, and the tabs between its overview and its history.

import { api, ApiError, qs } from './api.js';
import { announce, h, messageBox, when } from './dom.js';

const enc = encodeURIComponent;

// A message to show once on the next page drawn (an action re-renders the page it was taken on).
let pending = null;
export function flash(text, kind = 'success') { pending = { text, kind }; }

export function definitionHeader(record, tab) {
  const name = record.name;
  const scope = qs({ namespace: record.namespace });  // the definition's namespace, kept in every link and call
  const message = messageBox('definition-message');
  if (pending) { message.show(pending.text, pending.kind); pending = null; }
  const active = record.active !== false;
  const deactivate = active ? h('button', { type: 'button', id: 'deactivate', onclick: async (event) => {
    if (!window.confirm(`Deactivate ${name}? New instances can no longer be started; running ones finish.`)) return;
    const button = event.currentTarget;
    button.disabled = true;
    message.show('Deactivating…');
    try {
      await api.delete(`/definitions/${enc(name)}${scope}`);
      flash(`${name} is deactivated: new starts are refused. Registering it again (or restoring a revision) reactivates it.`);
      announce(`${name} deactivated.`);
      window.stepflow.render();
    } catch (error) {
      message.show(`Deactivating failed: ${error instanceof ApiError ? error.message : error}`, 'error');
      button.disabled = false;
    }
  } }, 'Deactivate') : null;
  const tabs = [['overview', 'Overview', `#/workflows/${enc(name)}${scope}`],
    ['history', 'History', `#/workflows/${enc(name)}/history${scope}`]];
  return [
    h('p', { class: 'breadcrumbs' }, h('a', { href: '#/workflows' }, 'Workflows'), ' / '),
    h('h1', {}, name),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', {}, h('span', {
        id: 'definition-status', class: `badge status-${active ? 'active' : 'inactive'}`, dataset: { active: String(active) },
      }, active ? 'active' : 'inactive'), ' ', deactivate),
      h('dt', {}, 'Version'), h('dd', {}, record.version),
      h('dt', {}, 'Revision'), h('dd', {}, record.revision_number ? `#${record.revision_number} ` : '', h('code', {}, record.revision)),
      h('dt', {}, 'Steps'), h('dd', {}, (record.steps || []).length),
      h('dt', {}, 'Registered'), h('dd', {}, when(record.created_at), record.created_by ? ` by ${record.created_by}` : '')),
    message.element,
    record.description ? h('p', { class: 'lead' }, record.description) : null,
    h('nav', { class: 'tabs', 'aria-label': `Pages of ${name}` }, h('ul', {}, tabs.map(([id, label, href]) =>
      h('li', {}, h('a', { href, id: `tab-${id}`, 'aria-current': id === tab ? 'page' : null }, label))))),
  ];
}
