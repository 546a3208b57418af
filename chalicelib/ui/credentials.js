// The tenant's credentials: names and metadata, page by page, as the API answers them; add, rotate and
// delete. A value goes from a password field to the API and is never drawn: the API cannot read it back,
// and the field is emptied as soon as the request is sent.

import { api, ApiError, qs } from './api.js';
import { announce, clear, h, messageBox, when } from './dom.js';

const enc = encodeURIComponent;

export async function credentialsView(main, context) {
  document.title = 'Credentials · Stepflow';
  const cursor = context.params.cursor || '';
  const limit = context.params.limit || ''; // the page size (the API's default when empty)
  const message = messageBox('credentials-message');
  const list = h('div', { id: 'credentials-list' }, h('p', {}, 'Loading…'));
  const form = addForm();
  clear(main,
    h('h1', {}, 'Credentials'),
    h('p', {}, 'Secrets your workflows\' steps use by name ({{ secrets.NAME }} or an http.request auth). '
      + 'A value is write-only: once saved, nobody can read it here or through the API.'),
    message.element, list,
    h('section', { class: 'panel', 'aria-labelledby': 'add-credential-title' },
      h('h2', { id: 'add-credential-title' }, 'Add a credential'), form));

  async function act(event, work, done) {
    const button = event?.currentTarget;
    if (button) button.disabled = true;
    message.clear();
    try {
      await work();
      await load(); // the list first: the message then says the page shows the change
      message.show(done, 'success');
      announce(done);
    } catch (error) {
      message.show(error instanceof ApiError ? error.message : String(error), 'error');
    } finally {
      if (button) button.disabled = false;
    }
  }

  function addForm() {
    const element = h('form', { id: 'add-credential', novalidate: true },
      h('p', {}, h('label', { for: 'credential-name' }, 'Name'), ' ',
        h('input', { id: 'credential-name', name: 'name', required: true, maxlength: 64, autocomplete: 'off',
          pattern: '[A-Za-z][A-Za-z0-9_]*', 'aria-describedby': 'credential-name-hint' }),
        h('span', { id: 'credential-name-hint', class: 'hint' }, ' A letter, then letters, digits or _.')),
      h('p', {}, h('label', { for: 'credential-description' }, 'Description'), ' ',
        h('input', { id: 'credential-description', name: 'description', maxlength: 1000, autocomplete: 'off' })),
      h('p', {}, h('label', { for: 'credential-value' }, 'Value'), ' ',
        h('input', { id: 'credential-value', name: 'value', type: 'password', required: true, autocomplete: 'new-password',
          'aria-describedby': 'credential-value-hint' }),
        h('span', { id: 'credential-value-hint', class: 'hint' }, ' At least 8 characters; not shown again after saving.')),
      h('button', { type: 'submit' }, 'Add credential'));
    element.addEventListener('submit', (event) => {
      event.preventDefault();
      const body = { name: element.name.value.trim(), value: element.value.value };
      const description = element.description.value.trim();
      if (description) body.description = description;
      element.value.value = ''; // the value leaves the page with the request
      act({ currentTarget: element.querySelector('button') }, async () => {
        await api.post('/credentials', body);
        element.reset();
      }, `Credential ${body.name} saved.`);
    });
    return element;
  }

  function rotateForm(name) {
    const id = `rotate-${name}`;
    const element = h('form', { class: 'rotate-credential inline', dataset: { credential: name } },
      h('label', { for: id }, `New value for ${name}`), ' ',
      h('input', { id, name: 'value', type: 'password', required: true, autocomplete: 'new-password' }), ' ',
      h('button', { type: 'submit' }, `Rotate ${name}`));
    element.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = element.value.value;
      element.value.value = '';
      act({ currentTarget: element.querySelector('button') },
        () => api.put(`/credentials/${enc(name)}`, { value }), `Credential ${name} rotated.`);
    });
    return element;
  }

  async function load() {
    let page;
    try {
      page = await api.get(`/credentials${qs({ cursor, limit })}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && cursor) {
        clear(list, h('p', {}, 'This page of credentials is no longer valid. ', h('a', { href: '#/credentials' }, 'Start from the first page')));
        return;
      }
      throw error;
    }
    if (!context.alive) return;
    const rows = page.items || [];
    const more = page.next_cursor
      ? h('p', {}, h('a', { id: 'credentials-next', href: `#/credentials${qs({ limit, cursor: page.next_cursor })}` }, 'Next page'))
      : null;
    const first = cursor ? h('p', {}, h('a', { id: 'credentials-first', href: `#/credentials${qs({ limit })}` }, 'First page')) : null;
    if (!rows.length) {
      clear(list, h('p', { id: 'no-credentials' }, cursor ? 'No more credentials.' : 'No credentials yet.'), first);
      return;
    }
    clear(list, h('table', { class: 'table', id: 'credentials' },
      h('thead', {}, h('tr', {}, ['Name', 'Description', 'Created', 'Rotated', ''].map(
        (c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
      h('tbody', {}, rows.map((c) => h('tr', { dataset: { credential: c.name } },
        h('th', { scope: 'row' }, h('code', {}, c.name)),
        h('td', {}, c.description || ''),
        h('td', {}, when(c.created_at), c.created_by ? ` by ${c.created_by}` : ''),
        h('td', { class: 'rotated' }, when(c.rotated_at)),
        h('td', {}, rotateForm(c.name), ' ',
          h('button', { type: 'button', class: 'delete-credential', onclick: (event) => {
            if (!window.confirm(`Delete credential ${c.name}? Steps that name it fail from now on.`)) return undefined;
            return act(event, () => api.delete(`/credentials/${enc(c.name)}`), `Credential ${c.name} deleted.`);
          } }, `Delete ${c.name}`)))))), first, more);
  }

  await load();
}
