// Stepflow's web UI: a hash router over a few plain views. No framework; every view is a function
// that fills its own container in <main> and may poll the API while it is shown.

import { api, ApiError, identity, qs, token, whenUnauthorized } from './api.js';
import { announce, clear, h } from './dom.js';
import { workflowsView, definitionView } from './workflows.js';
import { historyView } from './revisions.js';
import { instancesView, instanceView } from './instances.js';
import { inboxView, taskView } from './inbox.js';
import { credentialsView } from './credentials.js';
import { kvView } from './kv.js';
import { operationsView } from './operations.js';

const ROUTES = [
  [/^\/?$/, workflowsView],
  [/^\/workflows\/?$/, workflowsView],
  [/^\/workflows\/([^/]+)$/, definitionView],
  [/^\/workflows\/([^/]+)\/history$/, historyView],
  [/^\/instances\/?$/, instancesView],
  [/^\/instances\/([^/]+)$/, instanceView],
  [/^\/inbox\/?$/, inboxView],
  [/^\/inbox\/([^/]+)$/, taskView],
  [/^\/credentials\/?$/, credentialsView],
  [/^\/kv\/?$/, kvView],
  [/^\/operations\/?$/, operationsView],
];

const main = document.getElementById('main');
let current = null; // the shown view's context
let firstRender = true;

// What a view gets: its parameters, a way to know it is still shown, and polling that stops with it.
class ViewContext {
  constructor(path, params) {
    this.path = path;
    this.params = params;
    this.alive = true;
    this.timers = new Set();
    this.aborter = new AbortController(); // `signal`: what the view streams stops when it is left
  }

  get signal() { return this.aborter.signal; }

  // Calls `task` now and then every `ms` while the view is shown; `task` returns false to stop.
  poll(task, ms) {
    const tick = async () => {
      if (!this.alive) return;
      let again = true;
      if (!document.hidden) {
        try { again = (await task()) !== false; } catch (error) { console.warn('refresh failed', error); }
      }
      if (again && this.alive) this.timers.add(setTimeout(tick, ms));
    };
    this.timers.add(setTimeout(tick, ms));
  }

  leave() {
    this.alive = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.aborter.abort();
  }

  // Changes the query of the current route without re-rendering (filters).
  setQuery(params) {
    this.params = params;
    history.replaceState(null, '', `#${this.path}${qs(params)}`);
  }
}

export function parseHash(hash) {
  const text = hash.replace(/^#/, '');
  const [path, query = ''] = text.split('?');
  return { path: path || '/', params: Object.fromEntries(new URLSearchParams(query)) };
}

async function render() {
  const hash = location.hash;
  if (hash && !hash.startsWith('#/')) return; // an in-page link such as the skip link: not a route
  const { path, params } = parseHash(hash);
  let view = null;
  let args = [];
  for (const [pattern, candidate] of ROUTES) {
    const match = pattern.exec(path);
    if (match) { view = candidate; args = match.slice(1).map(decodeURIComponent); break; }
  }
  current?.leave();
  const context = new ViewContext(path, params);
  current = context;
  markNavigation(path);
  // Each view draws into a container of its own, swapped in now: a view left while it still waited for
  // the API draws into its container, out of the page, never over the view shown after it.
  const stage = h('div', { class: 'view', dataset: { path } });
  main.replaceChildren(stage);
  main.setAttribute('aria-busy', 'true');
  try {
    if (!view) {
      document.title = 'Not found · Stepflow';
      clear(stage, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/workflows' }, 'Go to the workflows')));
    } else {
      await view(stage, context, ...args);
    }
  } catch (error) {
    if (context.alive) showFailure(stage, error);
  } finally {
    if (context.alive) main.removeAttribute('aria-busy');
  }
  if (!context.alive) return;
  const heading = stage.querySelector('h1');
  if (heading && !firstRender) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
  firstRender = false;
}

function showFailure(stage, error) {
  document.title = 'Error · Stepflow';
  const message = error instanceof ApiError ? error.message : `Something went wrong: ${error?.message || error}`;
  clear(stage, h('h1', { tabindex: '-1' }, error?.status === 404 ? 'Not found' : 'Could not load this page'),
    h('p', { class: 'message message-error', role: 'alert' }, message),
    h('p', {}, h('button', { type: 'button', onclick: render }, 'Try again')));
}

function markNavigation(path) {
  const section = path.split('/')[1] || 'workflows';
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function setUpIdentity() {
  const form = document.getElementById('identity');
  form.user.value = identity.user;
  form.groups.value = identity.groups.join(', ');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    identity.save(form.user.value, form.groups.value);
    announce(`Saved: you are ${identity.user || 'nobody'}${identity.groups.length ? ` in ${identity.groups.join(', ')}` : ''}.`);
    if ((current?.path || '').startsWith('/inbox')) render();
  });
}

function setUpAuth() {
  const panel = document.getElementById('auth');
  const form = document.getElementById('auth-form');
  whenUnauthorized((message) => {
    token.clear();
    document.getElementById('auth-reason').textContent =
      `The API needs a bearer token${message ? ` (${message})` : ''}.`;
    if (panel.hidden) {
      panel.hidden = false;
      form.token.focus();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = form.token.value.trim();
    if (!value) return;
    token.set(value);
    form.token.value = '';
    panel.hidden = true;
    announce('Token saved for this tab.');
    render();
  });
}

document.addEventListener('click', (event) => {
  const skip = event.target.closest('[data-skip]');
  if (skip) {
    event.preventDefault();
    main.focus();
  }
});

setUpIdentity();
setUpAuth();
window.addEventListener('hashchange', render);
render();

// For tests and the console.
window.stepflow = { api, render };
