// Workflows: the list of definitions, and one definition's overview: its graph, input schema and start form.

import { api, ApiError, identity, qs } from './api.js';
import { definitionHeader } from './definition.js';
import { announce, clear, h, messageBox, pretty, when } from './dom.js';
import { errorSummary, readForm, schemaForm } from './forms.js';
import { drawGraph } from './graph.js';
import { triggersSection } from './triggers.js';

const enc = encodeURIComponent;

export async function workflowsView(main, context) {
  document.title = 'Workflows · Stepflow';
  const withInactive = context.params.include_inactive === 'true';
  const definitions = await api.get(`/definitions${qs({ include_inactive: withInactive ? 'true' : '' })}`);
  const rows = definitions.map((d) => h('tr', { dataset: { workflow: d.name, active: String(d.active !== false) } },
    h('th', { scope: 'row' }, h('a', { href: `#/workflows/${enc(d.name)}${qs({ namespace: d.namespace })}` }, d.name),
      d.active === false ? [' ', h('span', { class: 'badge status-inactive' }, 'inactive')] : null),
    h('td', {}, d.namespace || ''),
    h('td', {}, d.version),
    h('td', {}, d.description || ''),
    h('td', { class: 'num' }, (d.steps || []).length),
    h('td', {}, when(d.created_at)),
    h('td', {}, h('a', { href: `#/instances?workflow_name=${enc(d.name)}` }, 'Instances'))));
  clear(main,
    h('h1', {}, 'Workflows'),
    h('p', { class: 'lead' }, 'Registered workflow definitions. Open one to see its graph and start it.'),
    h('p', {}, h('a', { id: 'toggle-inactive', href: `#/workflows${qs({ include_inactive: withInactive ? '' : 'true' })}` },
      withInactive ? 'Hide deactivated workflows' : 'Show deactivated workflows')),
    definitions.length
      ? h('table', { class: 'table', id: 'workflows' },
        h('caption', { class: 'visually-hidden' }, `${definitions.length} workflows`),
        h('thead', {}, h('tr', {}, ['Name', 'Namespace', 'Version', 'Description', 'Steps', 'Registered', ''].map(
          (c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Links'))))),
        h('tbody', {}, rows))
      : h('p', {}, 'No workflows are registered yet. POST a definition to the API to add one.'));
}

export async function definitionView(main, context, name) {
  document.title = `${name} · Stepflow`;
  // A definition is named within its namespace: the address carries it to every call (none: none).
  const namespace = context.params.namespace;
  const [record, graph] = await Promise.all([
    api.get(`/definitions/${enc(name)}${qs({ namespace })}`),
    api.get(`/definitions/${enc(name)}/graph${qs({ graph_format: 'mermaid', namespace })}`),
  ]);
  const body = record.definition || {};
  const graphBox = h('div', { class: 'graph', id: 'definition-graph' });
  const schema = body.input_schema;

  const active = record.active !== false;
  clear(main,
    definitionHeader(record, 'overview'),
    h('p', {}, h('a', { href: `#/instances?workflow_name=${enc(record.name)}` }, `Instances of ${record.name}`)),
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'graph-title', class: 'panel' },
        h('h2', { id: 'graph-title' }, 'Graph'), graphBox),
      h('section', { 'aria-labelledby': 'start-title', class: 'panel' },
        h('h2', { id: 'start-title' }, 'Start an instance'),
        active ? startForm(record.name, schema, namespace)
          : h('p', { id: 'start-refused', class: 'message' }, 'This workflow is deactivated: new instances cannot be started.'),
        h('details', { class: 'schema' }, h('summary', {}, 'Input schema'),
          schema ? pretty(schema) : h('p', {}, 'This workflow takes any JSON object as input.')))),
    triggersSection(record.name, qs({ namespace })));
  await drawGraph(graphBox, graph, { title: `Graph of ${record.name}` });
}

function startForm(name, schema, namespace) {
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
        ...(namespace ? { namespace } : {}),
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
