// The task inbox: tasks for me, for my groups, or all; one task with its form, claim and reassign.

import { api, ApiError, identity, qs } from './api.js';
import { announce, clear, h, messageBox, pretty, statusBadge, when } from './dom.js';
import { errorSummary, readForm, schemaForm } from './forms.js';
import { decisionsSection } from './decisions.js';

const enc = encodeURIComponent;
const TASK_STATUSES = ['pending', 'completed', 'expired', 'canceled'];
const VIEWS = [['mine', 'Mine'], ['groups', 'My groups'], ['all', 'All']];

export async function inboxView(main, context) {
  document.title = 'Task inbox · Stepflow';
  const params = { view: 'mine', status: 'pending', ...context.params };
  if (!VIEWS.some(([v]) => v === params.view)) params.view = 'mine';

  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Whose tasks' }, h('ul', {}, VIEWS.map(([view, label]) =>
    h('li', {}, h('a', { href: `#/inbox${qs({ ...params, view })}`, 'aria-current': view === params.view ? 'page' : null,
      id: `inbox-${view}` }, label)))));
  const status = h('select', { id: 'inbox-status' }, TASK_STATUSES.map((s) => h('option', { value: s, selected: s === params.status }, s)));
  const list = h('div', { id: 'inbox-list' });
  const more = h('div', { class: 'pager' });

  clear(main, h('h1', {}, 'Task inbox'), who(), tabs,
    h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'inbox-status' }, 'Status'), status)),
    list, more);

  status.addEventListener('change', () => {
    params.status = status.value;
    context.setQuery(params);
    lastSignature = null;
    load();
  });

  let lastSignature = null;
  const load = async ({ quiet = false } = {}) => {
    const queries = queriesFor(params);
    if (!queries) {
      clear(list, h('p', { class: 'message message-info' },
        params.view === 'mine' ? 'Enter your user at the top of the page to see the tasks assigned to you.'
          : 'Enter your groups at the top of the page to see their tasks.'));
      return;
    }
    const pages = await Promise.all(queries.map((q) => api.get(`/tasks${qs({ ...q, status: params.status, limit: 50 })}`)));
    if (!context.alive) return;
    const seen = new Map();
    for (const page of pages) for (const task of page.items || []) seen.set(task.id, task);
    const tasks = [...seen.values()].sort((a, b) => (b.priority || 0) - (a.priority || 0)
      || String(a.due_date || '~').localeCompare(String(b.due_date || '~'))
      || String(a.created_at).localeCompare(String(b.created_at)));
    const signature = JSON.stringify(tasks.map((t) => [t.id, t.status, t.assignee]));
    if (signature === lastSignature) return;
    if (quiet && lastSignature !== null) announce('The inbox changed.');
    lastSignature = signature;
    clear(list, taskTable(tasks, params));
    const cursors = pages.map((p) => p.next_cursor).filter(Boolean);
    clear(more, cursors.length ? h('p', { class: 'hint' }, 'Showing the first 50 tasks of each list.') : null);
  };

  await load();
  context.poll(() => load({ quiet: true }), 2000);
}

function who() {
  const user = identity.user;
  const groups = identity.groups;
  return h('p', { class: 'hint', id: 'inbox-identity' },
    user ? `You are ${user}` : 'You have not said who you are',
    groups.length ? ` in ${groups.join(', ')}.` : '.');
}

function queriesFor(params) {
  if (params.view === 'mine') return identity.user ? [{ assignee_id: identity.user }] : null;
  if (params.view === 'groups') return identity.groups.length ? identity.groups.map((g) => ({ assignee_group: g })) : null;
  return [{}];
}

function taskTable(tasks, params) {
  if (!tasks.length) return h('p', { id: 'inbox-empty' }, `No ${params.status} tasks here.`);
  return h('table', { class: 'table', id: 'tasks' },
    h('caption', { class: 'visually-hidden' }, `${tasks.length} tasks`),
    h('thead', {}, h('tr', {}, ['Task', 'Workflow', 'Assignee', 'Group', 'Due', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, tasks.map((t) => h('tr', { dataset: { task: t.id, step: t.step_name } },
      h('th', { scope: 'row' }, h('a', { href: `#/inbox/${enc(t.id)}` }, t.title || t.step_name),
        t.overdue ? h('span', { class: 'badge status-failed' }, 'overdue') : null),
      h('td', {}, t.instance_id ? h('a', { href: `#/instances/${enc(t.instance_id)}` }, t.workflow || t.definition_name || 'instance') : '—'),
      h('td', {}, t.assignee || '—'),
      h('td', {}, [t.assignee_group, ...(t.candidate_groups || [])].filter(Boolean).join(', ') || '—'),
      h('td', {}, when(t.due_date)),
      h('td', {}, statusBadge(t.status))))));
}

export async function taskView(main, context, id) {
  const task = await api.get(`/tasks/${enc(id)}`);
  document.title = `${task.title || task.step_name} · Task · Stepflow`;
  const instanceLink = task.instance_id ? h('a', { href: `#/instances/${enc(task.instance_id)}`, id: 'task-instance' }, 'Open the instance') : null;
  const outcome = messageBox('task-outcome');
  outcome.element.tabIndex = -1;

  clear(main,
    h('p', { class: 'breadcrumbs' }, h('a', { href: '#/inbox' }, 'Task inbox'), ' / '),
    h('h1', {}, task.title || task.step_name),
    task.description ? h('p', { class: 'lead' }, task.description) : null,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', { id: 'task-status' }, statusBadge(task.status), task.overdue ? ' overdue' : ''),
      h('dt', {}, 'Workflow'), h('dd', {}, task.workflow || task.definition_name || '—', ' ', instanceLink),
      h('dt', {}, 'Step'), h('dd', {}, task.step_name),
      h('dt', {}, 'Assignee'), h('dd', { id: 'task-assignee' }, task.assignee || '—'),
      h('dt', {}, 'Groups'), h('dd', {}, [task.assignee_group, ...(task.candidate_groups || [])].filter(Boolean).join(', ') || '—'),
      h('dt', {}, 'Due'), h('dd', {}, when(task.due_date)),
      h('dt', {}, 'Priority'), h('dd', {}, task.priority ?? 0),
      h('dt', {}, 'Created'), h('dd', {}, when(task.created_at))),
    decisionsSection(task),
    outcome.element);

  if (task.status !== 'pending') {
    outcome.showNode(h('span', {}, `This task is ${task.status}`,
      task.completed_by ? ` (by ${task.completed_by}, ${when(task.completed_at)})` : '', '.'), 'info');
    if (task.output_data) main.append(h('h2', {}, 'Submitted'), pretty(task.output_data));
    return;
  }
  main.append(
    h('div', { class: 'columns' },
      h('section', { class: 'panel', 'aria-labelledby': 'complete-title' },
        h('h2', { id: 'complete-title' }, 'Complete'), completeForm(task, outcome, instanceLink)),
      h('section', { class: 'panel', 'aria-labelledby': 'manage-title' },
        h('h2', { id: 'manage-title' }, 'Claim or reassign'), claimForm(task), reassignForm(task))));
}

const META_SCHEMA = {
  type: 'object',
  required: ['completed_by'],
  properties: {
    completed_by: { type: 'string', title: 'Completed by', maxLength: 255 },
    comment: { type: 'string', title: 'Note for the record', maxLength: 2000 },
  },
};

function completeForm(task, outcome, instanceLink) {
  const fields = schemaForm(task.form_schema || { type: 'object' }, { prefix: 'task', jsonLabel: 'Output data' });
  const meta = schemaForm(META_SCHEMA, { prefix: 'task-meta' });
  const completedBy = meta.fields.get('completed_by').control;
  completedBy.value = identity.user;
  completedBy.setAttribute('autocomplete', 'username');
  const message = messageBox('complete-message');
  const button = h('button', { type: 'submit', class: 'primary', id: 'complete-button' }, 'Complete task');
  const form = h('form', { id: 'complete-form', novalidate: true }, fields.element, meta.element, message.element, button);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    fields.clearErrors();
    meta.clearErrors();
    const read = readForm(fields);
    const extra = readForm(meta);
    const problems = [...read.problems, ...extra.problems];
    if (problems.length) {
      fields.showErrors(read.problems);
      errorSummary(message.element, 'Please correct the form.', problems, fields);
      return;
    }
    button.disabled = true;
    try {
      const result = await api.post(`/tasks/${enc(task.id)}/complete`, {
        output_data: read.value, completed_by: extra.value.completed_by || '', comment: extra.value.comment ?? null,
      });
      form.remove();
      if (result.status === 'pending') {  // one vote of a quorum: recorded, the task waits for more
        document.getElementById('task-people')?.replaceWith(decisionsSection(result));
        outcome.showNode(h('span', { id: 'decision-recorded' }, 'Your decision is recorded; the task waits for more decisions.'), 'success');
        outcome.element.focus();
        announce('Decision recorded.');
        return;
      }
      outcome.showNode(h('span', {}, 'Task completed. ', instanceLink ? h('a', { href: instanceLink.getAttribute('href'), id: 'completed-instance' }, 'Watch the instance') : null), 'success');
      outcome.element.focus();
      announce('Task completed.');
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        message.show(`Already completed: ${error.message}`, 'error');
      } else if (error instanceof ApiError && error.issues.length) {
        const taskIssues = error.issues.filter((i) => String(i.location || '').startsWith('output_data'));
        const otherIssues = error.issues.filter((i) => !String(i.location || '').startsWith('output_data'));
        const first = fields.showErrors(taskIssues, 'output_data').first;
        const metaFirst = meta.showErrors(otherIssues).first;
        errorSummary(message.element, error.message, error.issues, fields, 'output_data');
        (first || metaFirst)?.focus.focus();
      } else {
        message.show(error.message, 'error');
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function claimForm(task) {
  const message = messageBox('claim-message');
  const button = h('button', { type: 'button', id: 'claim-button', onclick: async () => {
    if (!identity.user) { message.show('Enter your user at the top of the page first.', 'error'); return; }
    button.disabled = true;
    try {
      const claimed = await api.post(`/tasks/${enc(task.id)}/claim`, { user: identity.user });
      message.show(`Claimed: the task is assigned to ${claimed.assignee || identity.user}.`, 'success');
      const assignee = document.getElementById('task-assignee');
      if (assignee) assignee.textContent = claimed.assignee || identity.user;
    } catch (error) {
      message.show(error.status === 409 ? `Could not claim: ${error.message}` : error.message, 'error');
    } finally {
      button.disabled = false;
    }
  } }, 'Claim (assign to me)');
  return h('div', { class: 'claim' }, button, message.element);
}

function reassignForm(task) {
  const schema = {
    type: 'object',
    required: ['new_assignee'],
    properties: {
      new_assignee: { type: 'string', title: 'New assignee', maxLength: 255 },
      reason: { type: 'string', title: 'Reason', maxLength: 1000 },
    },
  };
  const fields = schemaForm(schema, { prefix: 'reassign' });
  const message = messageBox('reassign-message');
  const form = h('form', { id: 'reassign-form', novalidate: true, 'aria-label': 'Reassign' },
    fields.element, message.element, h('button', { type: 'submit' }, 'Reassign'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    const { value } = readForm(fields);
    try {
      const result = await api.post(`/tasks/${enc(task.id)}/reassign`, {
        new_assignee: value.new_assignee || '', reason: value.reason ?? null,
        ...(identity.user ? { reassigned_by: identity.user } : {}),
      });
      fields.clearErrors();
      message.show(`Reassigned to ${result.assignee || value.new_assignee}.`, 'success');
      const assignee = document.getElementById('task-assignee');
      if (assignee) assignee.textContent = result.assignee || value.new_assignee;
    } catch (error) {
      if (error instanceof ApiError && error.issues.length) {
        const { first } = fields.showErrors(error.issues);
        errorSummary(message.element, error.message, error.issues, fields);
        first?.focus.focus();
      } else {
        message.show(error.message, 'error');
      }
    }
  });
  return form;
}
