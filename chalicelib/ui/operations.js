// The operations page: instances by workflow and status, failing steps, overdue tasks and the latest audit
// entries, from /metrics, /tasks and /audit; refreshed every few seconds while shown.

import { api, qs } from './api.js';
import { clear, h, statusBadge, when } from './dom.js';

const REFRESH_MS = 5000;
const SERIES = /^(stepflow_[a-z_]+)\{([^}]*)\}\s+(\S+)$/;

// Prometheus text as [{name, labels, value}] (only what this page reads: labelled series).
export function parseMetrics(text) {
  const found = [];
  for (const line of String(text || '').split('\n')) {
    const match = SERIES.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of match[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2].replace(/\\(.)/g, '$1');
    found.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return found;
}

function table(id, caption, columns, rows, empty) {
  if (!rows.length) return h('p', { id, class: 'empty' }, empty);
  return h('table', { class: 'table', id },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows));
}

function instanceRows(series) {
  const byWorkflow = new Map();
  const row = (workflow) => {
    if (!byWorkflow.has(workflow)) byWorkflow.set(workflow, { open: 0, completed: 0, failed: 0, canceled: 0 });
    return byWorkflow.get(workflow);
  };
  for (const s of series) {
    if (s.name === 'stepflow_instances_open') row(s.labels.workflow).open += s.value;
    if (s.name === 'stepflow_instances_ended_total' && s.labels.status in row(s.labels.workflow)) {
      row(s.labels.workflow)[s.labels.status] += s.value;
    }
  }
  return [...byWorkflow.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([workflow, counts]) =>
    h('tr', { dataset: { workflow, failed: String(counts.failed) } },
      h('th', { scope: 'row' }, h('a', { href: `#/instances${qs({ workflow_name: workflow })}` }, workflow || '(inline)')),
      ...['open', 'completed', 'failed', 'canceled'].map((k) => h('td', { class: 'num' }, counts[k]))));
}

function failureRows(series) {
  return series.filter((s) => s.name === 'stepflow_step_failures_total' && s.value > 0)
    .sort((a, b) => b.value - a.value)
    .map((s) => h('tr', { dataset: { taskType: s.labels.task_type, error: s.labels.error } },
      h('th', { scope: 'row' }, s.labels.task_type), h('td', {}, s.labels.error), h('td', { class: 'num' }, s.value)));
}

async function draw(section) {
  const [text, overdue, audit] = await Promise.all([
    api.get('/metrics'), api.get('/tasks?overdue=true&limit=20'), api.get('/audit?limit=20')]);
  const series = parseMetrics(text);
  const overdueCount = series.filter((s) => s.name === 'stepflow_tasks_overdue').reduce((n, s) => n + s.value, 0);
  const pending = series.filter((s) => s.name === 'stepflow_tasks_pending' && s.labels.group === 'all')
    .reduce((n, s) => n + s.value, 0);
  clear(section,
    h('h2', {}, 'Instances by workflow'),
    table('ops-instances', 'Instances by workflow and status', ['Workflow', 'Open', 'Completed', 'Failed', 'Canceled'],
      instanceRows(series), 'No instance has run yet.'),
    h('h2', {}, 'Failing steps'),
    table('ops-failures', 'Failed step attempts by task type and error', ['Task type', 'Error', 'Attempts'],
      failureRows(series), 'No step has failed.'),
    h('h2', {}, 'Overdue tasks'),
    h('p', { id: 'ops-task-counts' }, `${pending} open tasks, ${overdueCount} overdue.`),
    table('ops-overdue', 'Overdue tasks', ['Task', 'Assignee', 'Group', 'Due'],
      (overdue.items || []).map((t) => h('tr', { dataset: { task: t.id } },
        h('th', { scope: 'row' }, h('a', { href: `#/inbox/${encodeURIComponent(t.id)}` }, t.title || t.step_name || t.id)),
        h('td', {}, t.assignee || ''), h('td', {}, t.assignee_group || ''), h('td', {}, when(t.due_at)))),
      'No task is overdue.'),
    h('h2', {}, 'Recent changes (audit log)'),
    table('ops-audit', 'The latest audit entries', ['When', 'Who', 'Operation', 'Target', 'Outcome'],
      (audit.items || []).map((a) => h('tr', { dataset: { operation: a.operation } },
        h('td', {}, when(a.at)), h('td', {}, a.actor), h('th', { scope: 'row' }, a.operation), h('td', {}, a.target),
        h('td', {}, statusBadge(a.outcome), ` ${a.status}`))),
      'Nothing has been changed yet.'));
}

export async function operationsView(main, context) {
  document.title = 'Operations · Stepflow';
  const section = h('div', { id: 'operations' });
  clear(main,
    h('h1', {}, 'Operations'),
    h('p', { class: 'lead' }, 'How the service is doing: instance counts, failing steps, the task backlog and who changed what.'),
    section);
  await draw(section);
  context.poll(async () => { await draw(section); }, REFRESH_MS);
}
