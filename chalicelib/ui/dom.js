// Small DOM helpers. Text always goes in as text nodes: nothing from the API is parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, '');
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let announcer;
// Tells screen-reader users about a change that happened without their action (live refresh, saves).
export function announce(message) {
  announcer ??= document.getElementById('announcer');
  if (!announcer) return;
  announcer.textContent = '';
  setTimeout(() => { announcer.textContent = message; }, 50);
}

export function when(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${String(status || 'unknown').replace(/[^a-z_]/g, '')}` }, status || 'unknown');
}

export function pretty(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value ?? null, null, 2));
}

// A message region whose text is announced: role=alert for errors, role=status for the rest.
export function messageBox(id) {
  const box = h('div', { id, class: 'message', role: 'status', 'aria-live': 'polite' });
  return {
    element: box,
    show(text, kind = 'info') {
      box.className = `message message-${kind}`;
      box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
      box.textContent = text;
    },
    showNode(node, kind = 'info') {
      box.className = `message message-${kind}`;
      box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
      clear(box, node);
    },
    clear() { box.className = 'message'; box.textContent = ''; },
  };
}
