// Draws a workflow graph with the vendored Mermaid (loaded on first use), plus a text version of it.

import { UI_BASE } from './api.js';
import { h, clear } from './dom.js';

let loading = null;
let renders = 0;

export function loadMermaid() {
  loading ??= new Promise((resolve, reject) => {
    if (window.mermaid) { resolve(window.mermaid); return; }
    const script = document.createElement('script');
    script.src = `${UI_BASE}/vendor/mermaid.min.js`;
    script.onload = () => {
      window.mermaid.initialize({
        startOnLoad: false,
        securityLevel: 'strict', // labels are sanitised, click directives do nothing
        theme: 'default',
        flowchart: { useMaxWidth: true, htmlLabels: true },
      });
      resolve(window.mermaid);
    };
    script.onerror = () => { loading = null; reject(new Error('the Mermaid library could not be loaded')); };
    document.head.append(script);
  });
  return loading;
}

export const STATE_LABELS = {
  completed: 'completed',
  current: 'running now',
  waiting: 'waiting',
  failed: 'failed',
  canceled: 'canceled',
  not_reached: 'not reached',
};

// Renders `graph` ({mermaid_source, nodes, edges}) into `container`. The container's data-graph-state
// becomes "rendered" or "error" (with the parser's message shown).
export async function drawGraph(container, graph, { title = 'Workflow graph' } = {}) {
  container.dataset.graphState = 'loading';
  container.setAttribute('aria-busy', 'true');
  const figure = h('div', { class: 'graph-svg', role: 'img', 'aria-label': `${title}: ${describe(graph)}` });
  try {
    const mermaid = await loadMermaid();
    await mermaid.parse(graph.mermaid_source);
    const { svg } = await mermaid.render(`stepflow-graph-${++renders}`, graph.mermaid_source);
    figure.innerHTML = svg; // Mermaid's output, sanitised by its strict security level
    clear(container, figure, textVersion(graph));
    container.dataset.graphState = 'rendered';
  } catch (error) {
    clear(container, h('p', { class: 'message message-error', role: 'alert' },
      `The graph could not be drawn: ${error?.message || error}`), textVersion(graph, true));
    container.dataset.graphState = 'error';
    container.dataset.graphError = String(error?.message || error);
  } finally {
    container.removeAttribute('aria-busy');
  }
}

function describe(graph) {
  const nodes = graph.nodes || [];
  const counts = {};
  for (const node of nodes) if (node.state) counts[node.state] = (counts[node.state] || 0) + 1;
  const states = Object.entries(counts).map(([state, n]) => `${n} ${STATE_LABELS[state] || state}`).join(', ');
  return `${nodes.length} steps, ${(graph.edges || []).length} links${states ? `; ${states}` : ''}`;
}

// The same graph as a list, for screen readers and for anyone who prefers text.
function textVersion(graph, open = false) {
  const labels = Object.fromEntries((graph.nodes || []).map((n) => [n.id, n.label]));
  const items = (graph.nodes || []).map((node) => {
    const next = (graph.edges || []).filter((e) => e.source === node.id).map((e) => {
      const when = e.condition ? ` when ${e.condition}` : (e.is_default ? ' otherwise' : '');
      return `${labels[e.target] ?? e.target}${when}`;
    });
    return h('li', { dataset: { step: node.id } },
      h('strong', {}, node.label), ` (${node.type}${node.is_initial ? ', start' : ''}${node.is_terminal ? ', end' : ''})`,
      node.state ? [' — ', h('span', { class: `state state-${node.state}` }, STATE_LABELS[node.state] || node.state)] : null,
      next.length ? `; then ${next.join('; ')}` : '');
  });
  return h('details', { class: 'graph-text', open }, h('summary', {}, 'Graph as text'), h('ul', {}, items));
}

export function legend() {
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    Object.entries(STATE_LABELS).map(([state, text]) => h('li', {}, h('span', { class: `swatch state-${state}`, 'aria-hidden': 'true' }), text)));
}
