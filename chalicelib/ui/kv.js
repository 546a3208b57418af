// The key-value store: pick a namespace, list its keys by prefix a page at a time, add a key (only if
// it is new: If-None-Match), view one value as JSON text, save an edit and its time to live only over
// the version read (If-Match: a 412 says it changed meanwhile) and delete. The namespace, prefix, page and key shown live in the address, so every view is a link.

import { api, ApiError, qs } from './api.js';
import { announce, clear, h, messageBox, pretty, when } from './dom.js';

const enc = encodeURIComponent;
// A key's own punctuation (: @ = +) is legal in a path segment and goes as it is: the local service does
// not decode path parameters (API Gateway does), so an escaped ':' would reach it as '%3A'.
const keyPath = (key) => enc(key).replace(/%(3A|40|3D|2B)/gi, (escaped) => decodeURIComponent(escaped));

export async function kvView(main, context) {
  document.title = 'Key-value store · Stepflow';
  const params = context.params;
  const namespace = params.namespace || '';
  const prefix = params.prefix || '';
  const link = (changes) => `#/kv${qs({ ...params, ...changes })}`;
  const picker = h('form', { id: 'kv-picker', class: 'filters' },
    h('label', { for: 'kv-namespace' }, 'Namespace'), ' ',
    h('input', { id: 'kv-namespace', name: 'namespace', value: namespace, required: true, maxlength: 64,
      autocomplete: 'off', pattern: '[A-Za-z0-9_.\\-]+' }), ' ',
    h('label', { for: 'kv-prefix' }, 'Key prefix'), ' ',
    h('input', { id: 'kv-prefix', name: 'prefix', value: prefix, autocomplete: 'off' }), ' ',
    h('button', { type: 'submit' }, 'List keys'));
  picker.addEventListener('submit', (event) => {
    event.preventDefault();
    // A new namespace or prefix starts from the first page, with no key open.
    location.hash = `#/kv${qs({ namespace: picker.querySelector('#kv-namespace').value.trim(), prefix: picker.querySelector('#kv-prefix').value, limit: params.limit })}`;
  });
  clear(main, h('h1', {}, 'Key-value store'),
    h('p', {}, 'JSON values your workflows read and write with the kv.get, kv.put and kv.delete steps.'),
    picker,
    namespace ? await keysSection(namespace, params, link) : null,
    namespace ? newKeySection(namespace, link) : null,
    namespace && params.key ? await entrySection(namespace, params.key, link) : null);
}

async function keysSection(namespace, params, link) {
  const page = await api.get(`/kv/${enc(namespace)}${qs({ prefix: params.prefix, limit: params.limit, cursor: params.cursor })}`);
  const items = Array.isArray(page.items) ? page.items : [];
  const section = h('section', { id: 'kv-keys', 'aria-labelledby': 'kv-keys-title' },
    h('h2', { id: 'kv-keys-title' }, `Keys in ${namespace}`, params.prefix ? ` starting with ${params.prefix}` : ''));
  if (!items.length) section.append(h('p', { id: 'no-keys' }, params.cursor ? 'No more keys.' : 'No keys.'));
  else {
    section.append(h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Key', 'Version', 'Updated', 'Expires'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((item) => h('tr', { dataset: { key: item.key } },
        h('th', { scope: 'row' }, h('a', { href: link({ key: item.key }) }, item.key)),
        h('td', { class: 'num' }, String(item.version)),
        h('td', {}, when(item.updated_at)),
        h('td', {}, item.expires_at ? when(item.expires_at) : 'never'))))));
  }
  const nav = [];
  if (params.cursor) nav.push(h('a', { id: 'kv-first', href: link({ cursor: undefined, key: undefined }) }, 'First page'));
  if (page.next_cursor) nav.push(h('a', { id: 'kv-next', href: link({ cursor: page.next_cursor, key: undefined }) }, 'Next page'));
  if (nav.length) section.append(h('p', {}, nav.flatMap((a, i) => (i ? [' · ', a] : [a]))));
  return section;
}

// The API's message with the fields it names ("ttl_seconds: must be a whole number ...").
function said(error) {
  const issues = error.issues.map((i) => `${i.location}: ${i.message}`).join('; ');
  return issues ? `${error.message}: ${issues}` : error.message;
}

// A blank time to live is none (the entry never expires); otherwise whole seconds, checked by the API.
function ttlOf(input) {
  const text = input.value.trim();
  if (!text) return {};
  return { ttl_seconds: /^\d+$/.test(text) ? Number(text) : text };
}

function parsed(text, message, editor) {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    message.show(`The value is not JSON: ${error.message}`, 'error');
    editor.focus();
    return null;
  }
}

// Adds a key to the namespace; an existing key is refused (If-None-Match: *), not overwritten.
function newKeySection(namespace, link) {
  const message = messageBox('kv-new-message');
  const keyInput = h('input', { id: 'kv-new-key', name: 'key', required: true, maxlength: 512, autocomplete: 'off' });
  const editor = h('textarea', { id: 'kv-new-value', name: 'value', rows: 4, cols: 60, spellcheck: 'false', required: true });
  const ttl = h('input', { id: 'kv-new-ttl', name: 'ttl_seconds', inputmode: 'numeric', size: 10, autocomplete: 'off',
    'aria-describedby': 'kv-new-ttl-hint' });
  const form = h('form', { id: 'kv-new' },
    h('p', {}, h('label', { for: 'kv-new-key' }, 'New key'), ' ', keyInput),
    h('p', {}, h('label', { for: 'kv-new-value' }, 'Value of the new key (JSON)'), editor),
    h('p', {}, h('label', { for: 'kv-new-ttl' }, 'Expires after (seconds)'), ' ', ttl,
      h('span', { id: 'kv-new-ttl-hint', class: 'hint' }, ' blank: never expires')),
    h('button', { type: 'submit' }, 'Add key'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    const key = keyInput.value.trim();
    const body = parsed(editor.value, message, editor);
    if (!body) return;
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await api.put(`/kv/${enc(namespace)}/${keyPath(key)}`, { ...body, ...ttlOf(ttl) }, { 'If-None-Match': '*' });
      announce(`${key} added.`);
      location.hash = link({ key, cursor: undefined });
    } catch (error) {
      message.show(error instanceof ApiError && error.status === 412 ? `${key} is already in ${namespace}: open it to change it.`
        : (error instanceof ApiError ? said(error) : String(error)), 'error');
      button.disabled = false;
    }
  });
  return h('section', { id: 'kv-add', 'aria-labelledby': 'kv-add-title' },
    h('h2', { id: 'kv-add-title' }, `Add a key to ${namespace}`), message.element, form);
}

async function entrySection(namespace, key, link) {
  const path = `/kv/${enc(namespace)}/${keyPath(key)}`;
  let entry;
  try {
    entry = await api.get(path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    return h('section', { id: 'kv-entry' }, h('p', { class: 'message message-error', role: 'alert' },
      `${key} is not in ${namespace} (deleted or expired).`));
  }
  const message = messageBox('kv-message');
  const editor = h('textarea', { id: 'kv-value-edit', name: 'value', rows: 10, cols: 80, spellcheck: 'false' });
  editor.value = JSON.stringify(entry.value ?? null, null, 2);
  // The time to live left, in whole seconds: saving unchanged keeps (about) the same expiry.
  const left = entry.expires_at ? Math.max(1, Math.ceil((Date.parse(entry.expires_at) - Date.now()) / 1000)) : null;
  const ttl = h('input', { id: 'kv-ttl-edit', name: 'ttl_seconds', inputmode: 'numeric', size: 10, autocomplete: 'off',
    value: left && Number.isFinite(left) ? String(left) : '', 'aria-describedby': 'kv-ttl-hint' });
  const ifMatch = { 'If-Match': `"${entry.version}"` }; // only over the version shown
  const reload = () => { window.dispatchEvent(new HashChangeEvent('hashchange')); };

  const form = h('form', { id: 'kv-edit' },
    h('label', { for: 'kv-value-edit' }, `Edit the value of ${key} (JSON)`), editor,
    h('p', {}, h('label', { for: 'kv-ttl-edit' }, `Expires after (seconds) for ${key}`), ' ', ttl,
      h('span', { id: 'kv-ttl-hint', class: 'hint' }, ' from the save; blank: never expires')),
    h('p', {}, h('button', { type: 'submit' }, `Save ${key}`), ' ',
      h('button', { type: 'button', id: 'kv-delete', onclick: async (event) => {
        if (!window.confirm(`Delete ${key} from ${namespace}?`)) return;
        const button = event.currentTarget;
        button.disabled = true;
        try {
          await api.delete(path, ifMatch);
          announce(`${key} deleted.`);
          location.hash = link({ key: undefined });
        } catch (error) {
          failed(error);
          button.disabled = false;
        }
      } }, `Delete ${key}`)));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = parsed(editor.value, message, editor);
    if (!body) return;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await api.put(path, { ...body, ...ttlOf(ttl) }, ifMatch);
      announce(`${key} saved.`);
      reload();
    } catch (error) {
      failed(error);
      button.disabled = false;
    }
  });

  function failed(error) {
    if (error instanceof ApiError && error.issues.length) {
      message.show(said(error), 'error');
      return;
    }
    if (error instanceof ApiError && error.status === 412) {
      message.showNode(h('span', {}, `${key} changed meanwhile (it is no longer version ${entry.version}): nothing was written. `,
        h('button', { type: 'button', id: 'kv-reload', onclick: reload }, 'Reload it')), 'error');
    } else {
      message.show(error instanceof ApiError ? error.message : String(error), 'error');
    }
  }

  return h('section', { id: 'kv-entry', 'aria-labelledby': 'kv-entry-title', dataset: { key, version: String(entry.version) } },
    h('h2', { id: 'kv-entry-title' }, key),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Version'), h('dd', {}, String(entry.version)),
      h('dt', {}, 'Updated'), h('dd', {}, when(entry.updated_at)),
      h('dt', {}, 'Expires'), h('dd', {}, entry.expires_at ? when(entry.expires_at) : 'never')),
    h('div', { id: 'kv-value' }, pretty(entry.value)),
    message.element, form);
}
