// Forms generated from a JSON Schema (a workflow's input_schema, a task's form_schema).
// Each field has a <label>, its description and its error linked by aria-describedby; errors from the
// API ({location, message}) are shown next to their field and listed in a summary that is announced.

import { h, clear } from './dom.js';

let counter = 0;

const REQUIRED_RE = /^'(.+)' is a required property$/;

function humanMessage(message) {
  return REQUIRED_RE.test(message) ? 'This field is required.' : message;
}

function typeOf(schema) {
  if (!schema || typeof schema !== 'object') return 'json';
  if (Array.isArray(schema.enum)) return 'enum';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'object' && schema.properties) return 'object';
  if (['string', 'number', 'integer', 'boolean'].includes(type)) return type;
  return 'json';
}

// A form for `schema` whose fields are named by their dotted path. Returns {element, read, showErrors, clearErrors}.
export function schemaForm(schema, { prefix = 'field', jsonLabel = 'Data' } = {}) {
  const form = { fields: new Map(), idBase: `${prefix}-${++counter}` };
  const root = h('div', { class: 'schema-fields' });
  if (typeOf(schema) === 'object') {
    for (const child of objectFields(form, schema, [])) root.append(child);
  } else {
    // No properties to build fields from: one JSON text field for the whole object.
    root.append(buildField(form, ['value'], { ...(schema || {}), type: undefined }, false, jsonLabel));
  }
  if (!root.childElementCount) root.append(h('p', { class: 'hint' }, 'This form has no fields.'));
  // An error goes away as soon as its field (or a field inside it) is changed.
  const edited = (event) => {
    for (const field of form.fields.values()) if (field.element.contains(event.target)) clearField(field);
  };
  root.addEventListener('input', edited);
  root.addEventListener('change', edited);
  return {
    element: root,
    read: () => readObject(form, schema, []),
    fields: form.fields,
    showErrors: (issues, stripPrefix) => showErrors(form, issues, stripPrefix),
    clearErrors: () => clearErrors(form),
  };
}

function objectFields(form, schema, path) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(
    ([name, spec]) => buildField(form, [...path, name], spec, required.has(name)),
  );
}

function fieldId(form, path) {
  return `${form.idBase}-${path.join('-').replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function labelText(spec, path, override) {
  return override || spec?.title || path[path.length - 1];
}

function buildField(form, path, spec, required, override) {
  const id = fieldId(form, path);
  const key = path.join('.');
  const kind = typeOf(spec);
  const errorId = `${id}-error`;
  const descriptionId = spec?.description ? `${id}-description` : null;
  const error = h('p', { class: 'field-error', id: errorId, hidden: true });
  const description = descriptionId ? h('p', { class: 'hint', id: descriptionId }, spec.description) : null;
  const describedBy = [descriptionId, errorId].filter(Boolean).join(' ');
  const marker = required ? h('span', { class: 'required' }, ' (required)') : null;

  if (kind === 'object') {
    const legend = h('legend', {}, labelText(spec, path, override), marker);
    const fieldset = h('fieldset', { class: 'field field-object', id, tabindex: '-1', 'aria-describedby': describedBy },
      legend, description, error, objectFields(form, spec, path));
    form.fields.set(key, { kind, element: fieldset, error, focus: fieldset, spec, required });
    return fieldset;
  }
  if (kind === 'boolean') {
    const name = `${id}-choice`;
    const option = (value, text) => {
      const optionId = `${id}-${value}`;
      const checked = spec.default === (value === 'true');
      return h('span', { class: 'choice' },
        h('input', { type: 'radio', id: optionId, name, value, checked, 'aria-describedby': describedBy }),
        h('label', { for: optionId }, text));
    };
    const yes = option('true', 'Yes');
    const no = option('false', 'No');
    const fieldset = h('fieldset', { class: 'field field-boolean', id, role: 'radiogroup',
      'aria-required': required ? 'true' : null, dataset: { path: key } },
    h('legend', {}, labelText(spec, path, override), marker), description, yes, no, error);
    form.fields.set(key, { kind, element: fieldset, error, focus: yes.querySelector('input'), spec, required });
    return fieldset;
  }

  let control;
  if (kind === 'enum') {
    control = h('select', { id, name: key },
      h('option', { value: '' }, required ? 'Choose…' : '(none)'),
      spec.enum.map((value, i) => h('option', { value: String(i), selected: spec.default === value }, String(value))));
  } else if (kind === 'number' || kind === 'integer') {
    control = h('input', { id, name: key, type: 'number', inputmode: kind === 'integer' ? 'numeric' : 'decimal',
      step: kind === 'integer' ? '1' : 'any', min: spec.minimum, max: spec.maximum, value: spec.default });
  } else if (kind === 'string') {
    const long = (spec.maxLength || 0) > 255 || spec.format === 'textarea';
    const types = { email: 'email', date: 'date', uri: 'url', 'date-time': 'datetime-local' };
    control = long
      ? h('textarea', { id, name: key, rows: 3, maxlength: null }, spec.default ?? '')
      : h('input', { id, name: key, type: types[spec.format] || 'text', value: spec.default,
        autocomplete: 'off', pattern: null });
  } else {
    control = h('textarea', { id, name: key, rows: 3, class: 'json-input', spellcheck: 'false' },
      spec && spec.default !== undefined ? JSON.stringify(spec.default) : '');
  }
  control.setAttribute('aria-describedby', describedBy);
  if (required) control.setAttribute('aria-required', 'true');
  const suffix = kind === 'json' ? h('span', { class: 'hint' }, ' (JSON)') : null;
  const wrapper = h('div', { class: `field field-${kind}`, dataset: { path: key } },
    h('label', { for: id }, labelText(spec, path, override), marker, suffix), description, control, error);
  form.fields.set(key, { kind, element: wrapper, control, error, focus: control, spec, required });
  return wrapper;
}

class FieldProblem extends Error {
  constructor(path, message) { super(message); this.path = path; }
}

// The form's value; empty fields are left out, so a missing required field is reported by the API.
function readObject(form, schema, path) {
  const kind = typeOf(schema);
  if (kind !== 'object') {
    const value = readField(form, ['value']);
    return value === undefined ? {} : value;
  }
  const out = {};
  for (const [name, spec] of Object.entries(schema.properties || {})) {
    const value = typeOf(spec) === 'object' ? readObject(form, spec, [...path, name]) : readField(form, [...path, name]);
    if (value !== undefined && !(typeOf(spec) === 'object' && Object.keys(value).length === 0)) out[name] = value;
  }
  return out;
}

function readField(form, path) {
  const key = path.join('.');
  const field = form.fields.get(key);
  if (!field) return undefined;
  const { kind, control, element, spec } = field;
  if (kind === 'boolean') {
    const checked = element.querySelector('input[type=radio]:checked');
    return checked ? checked.value === 'true' : undefined;
  }
  if (kind === 'enum') return control.value === '' ? undefined : spec.enum[Number(control.value)];
  if (kind === 'number' || kind === 'integer') {
    if (control.validity.badInput) throw new FieldProblem(key, 'Enter a number.');
    return control.value === '' ? undefined : Number(control.value);
  }
  if (kind === 'string') return control.value === '' ? undefined : control.value;
  if (control.value.trim() === '') return undefined;
  try {
    return JSON.parse(control.value);
  } catch {
    throw new FieldProblem(key, 'Enter valid JSON.');
  }
}

export function readForm(formApi) {
  try {
    return { value: formApi.read(), problems: [] };
  } catch (error) {
    if (error instanceof FieldProblem) return { value: null, problems: [{ path: error.path, message: error.message }] };
    throw error;
  }
}

function clearField(field) {
  field.error.hidden = true;
  field.error.textContent = '';
  field.element.classList.remove('has-error');
  (field.control || field.element).removeAttribute('aria-invalid');
  if (field.kind === 'boolean') field.element.querySelectorAll('input[type=radio]').forEach((r) => r.removeAttribute('aria-invalid'));
}

function clearErrors(form) {
  for (const field of form.fields.values()) clearField(field);
}

// Where an API issue belongs: "input_data.customer.name" -> "customer.name"; a required-property
// message at the parent names the missing field itself.
export function issuePath(issue, stripPrefix) {
  let location = String(issue.location || '');
  for (const prefix of [stripPrefix, 'input_data', 'output_data'].filter(Boolean)) {
    if (location === prefix) { location = ''; break; }
    if (location.startsWith(`${prefix}.`)) { location = location.slice(prefix.length + 1); break; }
  }
  const missing = REQUIRED_RE.exec(issue.message || '');
  if (missing) {
    const parts = location ? location.split('.') : [];
    if (parts[parts.length - 1] !== missing[1]) parts.push(missing[1]);
    location = parts.join('.');
  }
  return location;
}

// Shows each issue next to its field (or the nearest enclosing one); returns those that fit no field.
function showErrors(form, issues, stripPrefix) {
  clearErrors(form);
  const unplaced = [];
  for (const issue of issues) {
    let path = issue.path ?? issuePath(issue, stripPrefix);
    let field = form.fields.get(path);
    while (!field && path.includes('.')) {
      path = path.slice(0, path.lastIndexOf('.'));
      field = form.fields.get(path);
    }
    if (!field) { unplaced.push(issue); continue; }
    const message = humanMessage(issue.message);
    field.error.textContent = field.error.textContent ? `${field.error.textContent} ${message}` : message;
    field.error.hidden = false;
    field.element.classList.add('has-error');
    if (field.control) field.control.setAttribute('aria-invalid', 'true');
    if (field.kind === 'boolean') field.element.querySelectorAll('input[type=radio]').forEach((r) => r.setAttribute('aria-invalid', 'true'));
  }
  // The first field in error in the order a person reads the form, not the order of the issues.
  const first = [...form.fields.values()].find((f) => f.element.classList.contains('has-error')) || null;
  return { unplaced, first };
}

// A summary of a submission's errors: announced (role=alert) and linking to each field.
export function errorSummary(box, title, issues, formApi, stripPrefix) {
  const order = [...(formApi?.fields.keys() || [])];
  const rank = (issue) => {
    const index = order.indexOf(issue.path ?? issuePath(issue, stripPrefix));
    return index === -1 ? order.length : index;
  };
  const items = [...issues].sort((a, b) => rank(a) - rank(b)).map((issue) => {
    const path = issue.path ?? issuePath(issue, stripPrefix);
    const field = formApi?.fields.get(path);
    const text = field ? `${labelOf(field, path)}: ${humanMessage(issue.message)}` : `${issue.location || 'form'}: ${issue.message}`;
    if (!field) return h('li', {}, text);
    return h('li', {}, h('a', { href: `#${field.focus.id || field.element.id}`, onclick: (event) => {
      event.preventDefault();
      field.focus.focus();
    } }, text));
  });
  clear(box, h('p', { class: 'summary-title' }, title), items.length ? h('ul', {}, items) : null);
  box.className = 'message message-error';
  box.setAttribute('role', 'alert');
}

function labelOf(field, path) {
  return field.spec?.title || path.split('.').pop();
}
