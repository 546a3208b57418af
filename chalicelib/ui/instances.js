// Instances: the filtered, live list, and one instance with its timeline, coloured graph, history and actions.

import { api, ApiError, followEvents, qs } from './api.js';
import { announce, clear, h, messageBox, pretty, statusBadge, when } from './dom.js';
import { drawGraph, legend } from './graph.js';
import { renderSendEvent } from './send_event.js';
import { renderFailureLead, renderStepDetail } from './step_detail.js';
import { Timeline } from './timeline.js';

const enc = encodeURIComponent;
const STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'canceled'];
const TERMINAL = new Set(['completed', 'failed', 'canceled']);
const PAGE = 20;

const shortId = (id) => String(id).slice(0, 8);

export async function instancesView(main, context) {
  document.title = 'Instances · Stepflow';
  let definitions = [];
  try { definitions = await api.get('/definitions'); } catch { /* the filter then offers no names */ }
  const params = { ...context.params };

  const status = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: params.status === s }, s)));
  const workflow = h('select', { id: 'filter-workflow', name: 'workflow_name' },
    h('option', { value: '' }, 'Any workflow'),
    definitions.map((d) => h('option', { value: d.name, selected: params.workflow_name === d.name }, d.name)));
  const live = h('input', { type: 'checkbox', id: 'filter-live', checked: true });
  const filters = h('form', { class: 'filters', id: 'instance-filters', role: 'search', 'aria-label': 'Filter instances' },
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), status),
    h('div', { class: 'field' }, h('label', { for: 'filter-workflow' }, 'Workflow'), workflow),
    h('div', { class: 'field choice' }, live, h('label', { for: 'filter-live' }, 'Refresh live')));
  const tableBox = h('div', { id: 'instances-table' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const updated = h('p', { class: 'hint', id: 'instances-updated' });

  clear(main, h('h1', {}, 'Instances'), filters, updated, tableBox, pager);

  let lastSignature = null;
  // Pages follow next_cursor (an offset would read every skipped item); `trail` holds the cursors of
  // the pages before this one, so "Previous page" goes back without re-reading from the start.
  let cursor = null;
  let trail = [];
  const turn = (to, back) => h('button', { type: 'button', class: 'link', onclick: async () => {
    if (back) cursor = trail.pop() ?? null; else { trail.push(cursor); cursor = to; }
    lastSignature = null;
    await load();
  } }, back ? 'Previous page' : 'Next page');
  const load = async ({ quiet = false } = {}) => {
    const page = await api.get(`/instances${qs({ status: params.status, workflow_name: params.workflow_name,
      limit: PAGE, cursor })}`);
    if (!context.alive) return;
    const signature = JSON.stringify(page.items.map((i) => [i.id, i.status]));
    if (signature !== lastSignature) {
      if (quiet && lastSignature !== null) announce('The instance list changed.');
      lastSignature = signature;
      clear(tableBox, instanceTable(page.items, params));
      clear(pager, trail.length ? turn(null, true) : null, page.next_cursor ? turn(page.next_cursor, false) : null);
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  };

  filters.addEventListener('change', async () => {
    params.status = status.value;
    params.workflow_name = workflow.value;
    delete params.offset;
    cursor = null;
    trail = [];
    context.setQuery(params);
    lastSignature = null;
    await load();
    announce(`${tableBox.querySelectorAll('tbody tr').length} instances shown.`);
  });
  filters.addEventListener('submit', (event) => event.preventDefault());

  await load();
  context.poll(async () => {
    if (live.checked) await load({ quiet: true });
  }, 2000);
}

function instanceTable(items, params) {
  if (!items.length) {
    const filtered = params.status || params.workflow_name;
    return h('p', {}, filtered ? 'No instances match these filters.' : 'No instances yet. Start one from a workflow.');
  }
  return h('table', { class: 'table', id: 'instances' },
    h('caption', { class: 'visually-hidden' }, `${items.length} instances`),
    h('thead', {}, h('tr', {}, ['Instance', 'Workflow', 'Status', 'Started', 'Completed', 'Started by'].map(
      (c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, items.map((i) => h('tr', { dataset: { instance: i.id, status: i.status } },
      h('th', { scope: 'row' }, h('a', { href: `#/instances/${enc(i.id)}`, title: i.id }, h('code', {}, shortId(i.id)))),
      h('td', {}, h('a', { href: `#/workflows/${enc(i.definition_name)}` }, i.definition_name)),
      h('td', {}, statusBadge(i.status)),
      h('td', {}, when(i.started_at)),
      h('td', {}, when(i.completed_at)),
      h('td', {}, i.created_by || '—')))));
}

export async function instanceView(main, context, id) {
  document.title = `Instance ${shortId(id)} · Stepflow`;
  let selected = context.params.step || null;
  // The instance with its step outputs, and the input of the step the detail shows.
  const read = () => api.get(`/instances/${enc(id)}${qs({ include_outputs: true, input_of: selected })}`);
  let instance = await read();
  const failureLead = h('section', { id: 'failure-lead', class: 'message message-error', role: 'alert',
    'aria-labelledby': 'failure-title', hidden: true });
  const stepDetail = h('div', { id: 'step-detail', class: 'step-detail', 'aria-live': 'polite' });
  const selectStep = async (name) => {
    selected = name;
    context.setQuery({ ...context.params, step: name });
    timeline.select(name);
    renderStepDetail(stepDetail, instance, name, { loading: true });
    try {
      const fresh = await read();
      if (!context.alive || selected !== name) return;
      instance = fresh;
      renderStepDetail(stepDetail, instance, name);
      await refresh(); // the read may be newer than the page: redrawn where it changed
    } catch (error) {
      if (context.alive && selected === name) stepDetail.dataset.error = String(error.message || error);
    }
  };
  const timeline = new Timeline({ onSelect: selectStep });
  timeline.selected = selected;
  const graphBox = h('div', { class: 'graph', id: 'instance-graph' });
  const summary = h('div', { id: 'instance-summary' });
  const history = h('div', { id: 'step-history' });
  const data = h('div', { id: 'instance-data' });
  const tasks = h('div', { id: 'instance-tasks' });
  const eventLog = h('ol', { id: 'event-log', class: 'event-log', 'aria-live': 'off' });
  const actionsMessage = messageBox('actions-message');
  const actions = h('div', { class: 'actions', id: 'instance-actions' });
  const sendEvent = h('section', { class: 'panel', id: 'send-event', 'aria-labelledby': 'send-event-title' });

  clear(main,
    h('p', { class: 'breadcrumbs' }, h('a', { href: '#/instances' }, 'Instances'), ' / '),
    h('h1', {}, 'Instance ', h('code', {}, shortId(id))),
    failureLead,
    summary,
    h('section', { 'aria-labelledby': 'actions-title' }, h('h2', { id: 'actions-title', class: 'visually-hidden' }, 'Actions'),
      actions, actionsMessage.element),
    sendEvent,
    h('section', { class: 'panel', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      h('div', { class: 'columns timeline-columns' }, timeline.element, stepDetail)),
    h('div', { class: 'columns even' },
      h('section', { class: 'panel', 'aria-labelledby': 'igraph-title' },
        h('h2', { id: 'igraph-title' }, 'Graph'), legend(), graphBox),
      h('section', { class: 'panel', 'aria-labelledby': 'history-title' },
        h('h2', { id: 'history-title' }, 'Step history'), history,
        h('h2', { id: 'tasks-title' }, 'Human tasks'), tasks,
        h('h2', { id: 'data-title' }, 'Data'), data)),
    h('section', { class: 'panel', 'aria-labelledby': 'events-title' },
      h('h2', { id: 'events-title' }, 'Event log'), eventLog));

  let signature = null;
  // One redraw at a time, each of the instance as read when it began: two overlapping redraws could
  // otherwise finish out of order and leave an older graph under a newer status.
  let redrawing = Promise.resolve();
  const refresh = () => {
    redrawing = redrawing.then(redraw, redraw);
    return redrawing;
  };
  const redraw = async () => {
    const shown = instance;
    const next = JSON.stringify([shown.status, shown.step_history.map((s) => [s.step_name, s.status, s.attempts])]);
    renderSummary(summary, shown);
    renderActions(actions, actionsMessage, shown, context, id);
    if (next === signature) return;
    const announceChange = signature !== null;
    signature = next;
    timeline.setHistory(shown.step_history);
    renderFailureLead(failureLead, shown, selectStep);
    renderStepDetail(stepDetail, shown, selected);
    clear(history, historyTable(shown));
    clear(data, shown.error ? [h('h3', {}, 'Error'), pretty(shown.error)] : null, pretty(shown.context_data));
    const [graph] = await Promise.all([
      api.get(`/instances/${enc(id)}/graph`),
      // The poll redraws the page once the step has taken the event.
      loadTasks(tasks, id).then((items) => renderSendEvent(sendEvent, items, id)),
    ]);
    if (!context.alive) return;
    await drawGraph(graphBox, graph, { title: `Graph of instance ${shortId(id)}` });
    graphBox.dataset.instanceStatus = shown.status;
    if (announceChange) announce(`Instance is ${shown.status}.`);
  };

  await refresh();
  // The event log, followed live: each event is listed as it comes and the page is read again once the
  // events stop coming for a moment (one read per burst); once the log has ended, a last read.
  let pending = null;
  const reload = async () => {
    pending = null;
    instance = await read();
    if (context.alive) await refresh();
  };
  const onEvent = (event) => {
    timeline.addEvent(event);
    eventLog.append(eventItem(event));
    eventLog.dataset.count = String(eventLog.children.length);
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => { reload().catch((error) => console.warn('refresh failed', error)); }, 300);
    context.timers.add(pending);
  };
  // Not awaited: the view is shown (and the router goes on) while the log is followed.
  followEvents(`/instances/${enc(id)}/events`, onEvent, context.signal).then(async () => {
    if (!context.alive) return;
    eventLog.dataset.ended = 'true';
    if (pending) clearTimeout(pending);
    await reload();
  }).catch((error) => {
    if (!context.alive) return;
    // No stream (an older server, a proxy that refuses it): read the instance every second instead.
    console.warn('the event log cannot be followed; polling', error);
    let settled = TERMINAL.has(instance.status) ? 1 : 0;
    context.poll(async () => {
      instance = await read();
      if (!context.alive) return false;
      await refresh();
      settled = TERMINAL.has(instance.status) ? settled + 1 : 0;
      return settled < 2;
    }, 1000);
  });
}

function eventItem(event) {
  return h('li', { dataset: { type: event.type, seq: event.seq } },
    clock(event.at), ' ', h('code', {}, event.type), event.step ? ` ${event.step}` : '');
}

function renderSummary(box, instance) {
  const progress = instance.progress || {};
  clear(box, h('dl', { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', { id: 'instance-status', dataset: { status: instance.status } }, statusBadge(instance.status)),
    h('dt', {}, 'Workflow'), h('dd', {}, h('a', { href: `#/workflows/${enc(instance.definition_name)}` }, instance.definition_name),
      ` ${instance.version || ''}`),
    h('dt', {}, 'Current step'), h('dd', {}, (instance.current_steps || []).join(', ') || '—'),
    h('dt', {}, 'Progress'), h('dd', {},
      h('progress', { max: 100, value: progress.percent ?? 0, 'aria-label': 'Progress' }), ` ${progress.percent ?? 0} %`),
    h('dt', {}, 'Started'), h('dd', {}, when(instance.started_at)),
    h('dt', {}, 'Completed'), h('dd', {}, when(instance.completed_at)),
    h('dt', {}, 'Started by'), h('dd', {}, instance.created_by || '—'),
    h('dt', {}, 'Id'), h('dd', {}, h('code', {}, instance.id))));
}

function renderActions(box, message, instance, context, id) {
  const wanted = { failed: ['retry', 'resume'], canceled: ['retry'], completed: [] }[instance.status] ?? ['cancel'];
  if (box.dataset.shown === wanted.join()) return;
  box.dataset.shown = wanted.join();
  const labels = { cancel: 'Cancel instance', retry: 'Retry', resume: 'Resume from the failed step' };
  clear(box, wanted.map((action) => h('button', { type: 'button', id: `action-${action}`, onclick: async (event) => {
    if (action === 'cancel' && !window.confirm('Cancel this instance? Running steps are stopped.')) return;
    const button = event.currentTarget;
    button.disabled = true;
    message.show(`${labels[action]}…`);
    try {
      const result = await api.post(`/instances/${enc(id)}/${action}`, {});
      message.show(`${labels[action]}: done.`, 'success');
      if (result && result.id && result.id !== id) location.hash = `#/instances/${enc(result.id)}`;
      else if (context.alive) window.stepflow.render();
    } catch (error) {
      message.show(`${labels[action]} failed: ${error instanceof ApiError ? error.message : error}`, 'error');
    } finally {
      button.disabled = false;
    }
  } }, labels[action])));
}

function clock(value) {
  if (!value) return '—';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return h('time', { datetime: value, title: date.toLocaleString() }, date.toLocaleTimeString());
}

function historyTable(instance) {
  const steps = instance.step_history || [];
  if (!steps.length) return h('p', {}, 'No step has started yet.');
  const errors = steps.some((s) => s.error);
  return h('table', { class: 'table', id: 'history' },
    h('thead', {}, h('tr', {}, ['Step', 'Status', 'Attempts', 'Started', 'Completed', errors ? 'Error' : null]
      .filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, steps.map((s) => h('tr', { dataset: { step: s.step_name, status: s.status } },
      h('th', { scope: 'row' }, s.step_name),
      h('td', {}, statusBadge(s.status)),
      h('td', { class: 'num' }, s.attempts ?? ''),
      h('td', {}, clock(s.started_at)),
      h('td', {}, clock(s.completed_at)),
      errors ? h('td', { class: 'error-text' }, s.error ? `${s.error.error || ''}${s.error.message ? `: ${s.error.message}` : ''}` : '') : null))));
}

async function loadTasks(box, id) {
  try {
    const page = await api.get(`/tasks${qs({ instance_id: id })}`);
    const items = page.items || [];
    clear(box, items.length
      ? h('ul', { class: 'task-links' }, items.map((t) => h('li', {},
        h('a', { href: `#/inbox/${enc(t.id)}` }, t.title || t.step_name), ' ', statusBadge(t.status),
        t.assignee ? ` — ${t.assignee}` : '', t.assignee_group ? ` (${t.assignee_group})` : '')))
      : h('p', {}, 'No human tasks.'));
    return items;
  } catch (error) {
    clear(box, h('p', { class: 'hint' }, error.status === 404 || error.status === 403
      ? 'Human tasks are not available on this server.' : `Tasks could not be loaded: ${error.message}`));
    return [];
  }
}
