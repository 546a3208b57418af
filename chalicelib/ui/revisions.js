// A workflow's history page: its revisions (newest first) with restore, a diff between two, one
// revision's source highlighted, the weights of its aliases where the API has them, and its schedules
// with their next fire times.
// The revision shown and the two compared live in the address (?rev=, ?from=, ?to=), so every view
// of the history is a link.

import { api, ApiError, qs } from './api.js';
import { definitionHeader, flash } from './definition.js';
import { announce, clear, h, messageBox, pretty, when } from './dom.js';
import { diffLines, highlighted } from './highlight.js';
import { loadSchedules, schedulesSection } from './schedules.js';

const enc = encodeURIComponent;

export async function historyView(main, context, name) {
  document.title = `History of ${name} · Stepflow`;
  const params = context.params;
  const base = `/definitions/${enc(name)}`;
  // A definition is named within its namespace: the address carries it to every call (none: none).
  const scope = qs({ namespace: params.namespace });
  const [record, revisions, aliases, schedules] = await Promise.all([
    api.get(`${base}${scope}`), api.get(`${base}/revisions${scope}`), loadAliases(name, scope),
    loadSchedules(name, scope)]);
  const shown = params.rev || String(revisions[0]?.number ?? record.revision_number ?? '');
  const comparing = params.from && params.to;
  // A revision or a pair from the address that the workflow does not have is said where it would be
  // shown; the rest of the page stays usable.
  const [detail, diff] = await Promise.all([
    shown ? settle(api.get(`${base}/revisions/${enc(shown)}${scope}`)) : null,
    comparing ? settle(api.get(`${base}/revisions/${enc(params.from)}/diff${qs({ to: params.to, namespace: params.namespace })}`)) : null,
  ]);
  const link = (changes) => `#/workflows/${enc(name)}/history${qs({ ...params, ...changes })}`;

  clear(main,
    definitionHeader(record, 'history'),
    aliasesSection(aliases, link),
    schedulesSection(name, scope, schedules),
    revisionsSection(name, revisions, params, link, detail?.value, scope),
    diff?.error ? failed('diff', `The diff of revisions ${params.from} and ${params.to} could not be shown: ${diff.error}`) : null,
    diff?.value ? diffSection(diff.value) : null,
    detail?.error ? failed('revision-source', `Revision ${shown} could not be shown: ${detail.error}`) : null,
    detail?.value ? sourceSection(detail.value) : null);
}

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401) throw error;
    return { error: error.message };
  }
}

function failed(id, text) {
  return h('section', { id }, h('p', { class: 'message message-error', role: 'alert' }, text));
}

// The aliases and their weights (GET .../aliases answers a list, `live` first): null when the caller
// may not read them, so the page shows nothing; any other failure is a note, never a broken page.
async function loadAliases(name, scope) {
  try {
    const body = await api.get(`/definitions/${enc(name)}/aliases${scope}`);
    return { items: Array.isArray(body) ? body : (Array.isArray(body?.items) ? body.items : []) };
  } catch (error) {
    if (error instanceof ApiError && [403, 404, 405].includes(error.status)) return null;
    return { error: error?.message || String(error) };
  }
}

function aliasesSection(aliases, link) {
  if (!aliases || (aliases.items && !aliases.items.length)) return null;
  if (aliases.error) return h('p', { id: 'aliases-error', class: 'hint' }, `Aliases could not be read: ${aliases.error}`);
  const rows = aliases.items.filter((a) => a && typeof a.alias === 'string').map((alias) => {
    const routes = (Array.isArray(alias.routes) ? alias.routes : []).filter((r) => r && r.revision !== undefined);
    const total = routes.reduce((sum, r) => sum + (Number(r.weight) || 0), 0);
    return h('tr', { dataset: { alias: alias.alias } },
      h('th', { scope: 'row' }, alias.alias),
      h('td', {}, h('ul', { class: 'routes' }, routes.map((r) => {
        const weight = Number(r.weight) || 0;
        const share = total ? Math.round((weight / total) * 1000) / 10 : 0;
        return h('li', { dataset: { revision: String(r.revision), weight: String(weight) } },
          h('a', { href: link({ rev: String(r.revision) }) }, `revision ${r.revision}`),
          `: weight ${weight} (${share}%) `,
          h('span', { class: 'weight-bar', 'aria-hidden': 'true' }, h('span', { style: `width: ${share}%` })));
      }))));
  });
  return h('section', { 'aria-labelledby': 'aliases-title', id: 'aliases' },
    h('h2', { id: 'aliases-title' }, 'Aliases'),
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Alias'), h('th', { scope: 'col' }, 'Routes to'))),
      h('tbody', {}, rows)));
}

function revisionsSection(name, revisions, params, link, detail, scope) {
  const newest = revisions[0]?.number;
  const from = params.from || String(revisions[1]?.number ?? newest ?? '');
  const to = params.to || String(newest ?? '');
  const message = messageBox('revisions-message');
  const radio = (group, number, checked) => h('input', {
    type: 'radio', name: group, value: String(number), checked, id: `${group}-${number}`,
    'aria-label': `${group === 'from' ? 'Compare from' : 'Compare to'} revision ${number}`,
  });
  const rows = revisions.map((r) => h('tr', {
    dataset: { number: String(r.number), revision: r.revision }, class: String(r.number) === String(detail?.number) ? 'selected' : null,
  },
  h('td', {}, radio('from', r.number, String(r.number) === from)),
  h('td', {}, radio('to', r.number, String(r.number) === to)),
  h('th', { scope: 'row' }, `#${r.number}`),
  h('td', {}, h('code', {}, r.revision)),
  h('td', {}, r.version),
  h('td', {}, when(r.created_at), r.created_by ? h('div', { class: 'hint' }, `by ${r.created_by}`) : null),
  h('td', { class: 'change' }, r.change || '', r.restored_from ? h('div', { class: 'hint' }, `restore of #${r.restored_from}`) : null),
  h('td', {}, h('div', { class: 'row-actions' },
    h('a', { href: link({ rev: String(r.number) }), 'aria-label': `View revision ${r.number}` }, 'View'),
    r.number !== newest ? restoreButton(name, r, message, scope) : null))));
  const form = h('form', { id: 'compare-form', 'aria-describedby': 'revisions-message' },
    h('table', { class: 'table', id: 'revisions' },
      h('caption', { class: 'visually-hidden' }, `${revisions.length} revisions, newest first`),
      h('thead', {}, h('tr', {}, ['From', 'To', 'Number', 'Revision', 'Version', 'Created', 'Change', 'Actions']
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)),
    revisions.length > 1 ? h('button', { type: 'submit', class: 'primary' }, 'Compare') : null,
    message.element);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const picked = { from: form.elements.from?.value, to: form.elements.to?.value };
    if (!picked.from || !picked.to || picked.from === picked.to) {
      message.show('Pick two different revisions to compare.', 'error');
      return;
    }
    location.hash = link(picked);
  });
  return h('section', { 'aria-labelledby': 'revisions-title' }, h('h2', { id: 'revisions-title' }, 'Revisions'), form);
}

function restoreButton(name, revision, message, scope) {
  return h('button', { type: 'button', dataset: { restore: String(revision.number) }, onclick: async (event) => {
    if (!window.confirm(`Restore revision ${revision.number} of ${name}? It becomes the latest revision.`)) return;
    const button = event.currentTarget;
    button.disabled = true;
    message.show(`Restoring revision ${revision.number}…`);
    try {
      const restored = await api.post(`/definitions/${enc(name)}/revisions/${enc(revision.number)}/restore${scope}`, {});
      flash(`Revision ${revision.number} restored as revision ${restored.revision_number}.`);
      announce(`Revision ${revision.number} restored.`);
      window.stepflow.render();
    } catch (error) {
      message.show(`Restoring failed: ${error instanceof ApiError ? error.message : error}`, 'error');
      button.disabled = false;
    }
  } }, 'Restore');
}

function diffSection(diff) {
  const s = diff.structural || {};
  const items = [
    ['Steps added', s.steps_added], ['Steps removed', s.steps_removed],
    ['Steps changed', (s.steps_changed || []).map((c) => `${c.id} (${(c.fields || []).join(', ')})`)],
    ['Links added', (s.edges_added || []).map(edgeText)], ['Links removed', (s.edges_removed || []).map(edgeText)],
    ['Fields changed', s.fields_changed],
  ].filter(([, list]) => list && list.length);
  return h('section', { 'aria-labelledby': 'diff-title', id: 'diff', dataset: { from: String(diff.from?.number), to: String(diff.to?.number) } },
    h('h2', { id: 'diff-title' }, `Changes from revision ${diff.from?.number} to revision ${diff.to?.number}`),
    items.length
      ? h('dl', { class: 'facts', id: 'diff-structural' }, items.map(([label, list]) => [h('dt', {}, label), h('dd', {}, list.join('; '))]))
      : h('p', { id: 'diff-structural' }, 'The two revisions define the same steps and links.'),
    diff.source_diff
      ? diffLines(diff.source_diff, { id: 'diff-source', 'aria-label': 'Unified diff of the sources' })
      : h('p', { class: 'hint' }, 'The sources are the same.'));
}

function edgeText(edge) {
  return `${edge.source} → ${edge.target}${edge.condition ? ` when ${edge.condition}` : ''}`;
}

function sourceSection(detail) {
  const format = detail.source_format === 'yaml' ? 'yaml' : 'json';
  return h('section', { 'aria-labelledby': 'source-title', id: 'revision-source', dataset: { number: String(detail.number) } },
    h('h2', { id: 'source-title' }, `Source of revision ${detail.number}`),
    h('p', { class: 'hint' }, `${format.toUpperCase()}, as submitted${detail.created_by ? ` by ${detail.created_by}` : ''} on ${when(detail.created_at)}.`),
    detail.source
      ? highlighted(detail.source, format, { id: 'source-code', 'aria-label': `Source of revision ${detail.number}` })
      : [h('p', { class: 'hint' }, 'This revision was stored without its source; its normalised definition:'),
        highlighted(JSON.stringify(detail.definition, null, 2), 'json', { id: 'source-code' })],
    h('details', { class: 'schema' }, h('summary', {}, 'Compiled state machine (ASL)'), pretty(detail.asl)));
}
