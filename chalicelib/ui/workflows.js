// Workflows: the list of definitions, and one definition with its graph, input schema and start form.

import { api, ApiError, identity } from './api.js';
import { announce, clear, h, messageBox, pretty, when } from './dom.js';
import { errorSummary, readForm, schemaForm } from './forms.js';
import { drawGraph } from './graph.js';

const enc = encodeURIComponent;

export async function workflowsView(main) {
  document.title = 'Workflows · Stepflow';
  const definitions = await api.get('/definitions');
  const rows = definitions.map((d) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/workflows/${enc(d.name)}` }, d.name)),
    h('td', {}, d.version),
    h('td', {}, d.description || ''),
    h('td', { class: 'num' }, (d.steps || []).length),
    h('td', {}, when(d.created_at)),
    h('td', {}, h('a', { href: `#/instances?workflow_name=${enc(d.name)}` }, 'Instances'))));
  clear(main,
    h('h1', {}, 'Workflows'),
    h('p', { class: 'lead' }, 'Registered workflow definitions. Open one to see its graph and start it.'),
    definitions.length
      ? h('table', { class: 'table', id: 'workflows' },
        h('caption', { class: 'visually-hidden' }, `${definitions.length} workflows`),
        h('thead', {}, h('tr', {}, ['Name', 'Version', 'Description', 'Steps', 'Registered', ''].map(
          (c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Links'))))),
        h('tbody', {}, rows))
      : h('p', {}, 'No workflows are registered yet. POST a definition to the API to add one.'));
}

export async function definitionView(main, context, name) {
  document.title = `${name} · Stepflow`;
  const [record, graph] = await Promise.all([
    api.get(`/definitions/${enc(name)}`),
    api.get(`/definitions/${enc(name)}/graph?graph_format=mermaid`),
  ]);
  const body = record.definition || {};
  const graphBox = h('div', { class: 'graph', id: 'definition-graph' });
  const schema = body.input_schema;

  clear(main,
    h('p', { class: 'breadcrumbs' }, h('a', { href: '#/workflows' }, 'Workflows'), ' / '),
    h('h1', {}, record.name),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Version'), h('dd', {}, record.version),
      h('dt', {}, 'Revision'), h('dd', {}, h('code', {}, record.revision)),
      h('dt', {}, 'Steps'), h('dd', {}, (record.steps || []).length),
      h('dt', {}, 'Registered'), h('dd', {}, when(record.created_at))),
    record.description ? h('p', { class: 'lead' }, record.description) : null,
    h('p', {}, h('a', { href: `#/instances?workflow_name=${enc(record.name)}` }, `Instances of ${record.name}`)),
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'graph-title', class: 'panel' },
        h('h2', { id: 'graph-title' }, 'Graph'), graphBox),
      h('section', { 'aria-labelledby': 'start-title', class: 'panel' },
        h('h2', { id: 'start-title' }, 'Start an instance'),
        startForm(record.name, schema),
        h('details', { class: 'schema' }, h('summary', {}, 'Input schema'),
          schema ? pretty(schema) : h('p', {}, 'This workflow takes any JSON object as input.')))));
  await drawGraph(graphBox, graph, { title: `Graph of ${record.name}` });
}

function startForm(name, schema) {
  const fields = schemaForm(schema || { type: 'object' }, { prefix: 'start', jsonLabel: 'Input data' });
  const message = messageBox('start-message');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const form = h('form', { id: 'start-form', novalidate: true, 'aria-describedby': 'start-message' },
    fields.element, message.element, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    fields.clearErrors();
    const { value, problems } = readForm(fields);
    if (problems.length) {
      const { first } = fields.showErrors(problems);
      errorSummary(message.element, 'Please correct the form.', problems, fields);
      first?.focus.focus();
      return;
    }
    button.disabled = true;
    message.show('Starting…');
    try {
      const started = await api.post('/instances', {
        definition_name: name, input_data: value, ...(identity.user ? { user_id: identity.user } : {}),
      });
      announce(`Started instance ${started.id}.`);
      location.hash = `#/instances/${enc(started.id)}`;
    } catch (error) {
      if (error instanceof ApiError && error.issues.length) {
        const { first } = fields.showErrors(error.issues, 'input_data');
        errorSummary(message.element, error.message, error.issues, fields, 'input_data');
        first?.focus.focus();
      } else {
        message.show(error.message, 'error');
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
