// The task inbox: tasks for me, for my groups, or all, and the ones I decided; search, sort and paging.
// One task with what to decide (its context), its instance so far, its form, claim and reassign.

import { api, ApiError, identity, qs } from './api.js';
import { announce, clear, h, messageBox, pretty, statusBadge, when } from './dom.js';
import { errorSummary, readForm, schemaForm } from './forms.js';
import { decisionsSection } from './decisions.js';

const enc = encodeURIComponent;
const TASK_STATUSES = ['pending', 'completed', 'expired', 'canceled'];
const VIEWS = [['mine', 'Mine'], ['groups', 'My groups'], ['all', 'All'], ['decided', 'My decisions']];
const SORTS = [['priority', 'Priority'], ['due', 'Due date'], ['newest', 'Newest']];
const PAGE = 25;

export async function inboxView(main, context) {
  document.title = 'Task inbox · Stepflow';
  const params = { view: 'mine', status: 'pending', sort: 'priority', q: '', ...context.params };
  if (!VIEWS.some(([v]) => v === params.view)) params.view = 'mine';
  if (!SORTS.some(([v]) => v === params.sort)) params.sort = 'priority';

  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Whose tasks' }, h('ul', {}, VIEWS.map(([view, label]) =>
    h('li', {}, h('a', { href: `#/inbox${qs({ ...params, view })}`, 'aria-current': view === params.view ? 'page' : null,
      id: `inbox-${view}` }, label)))));
  const decided = params.view === 'decided';
  const status = h('select', { id: 'inbox-status', disabled: decided },
    TASK_STATUSES.map((s) => h('option', { value: s, selected: s === params.status }, s)));
  const search = h('input', { id: 'inbox-search', type: 'search', value: params.q, autocomplete: 'off',
    'aria-describedby': 'inbox-search-hint' });
  const sort = h('select', { id: 'inbox-sort' }, SORTS.map(([v, label]) => h('option', { value: v, selected: v === params.sort }, label)));
  const list = h('div', { id: 'inbox-list' });
  const more = h('div', { class: 'pager' });

  clear(main, h('h1', {}, 'Task inbox'), who(), tabs,
    h('div', { class: 'filters' },
      h('div', { class: 'field' }, h('label', { for: 'inbox-search' }, 'Search title or workflow'), search,
        h('p', { class: 'hint', id: 'inbox-search-hint' }, 'Press / to search from anywhere on this page.')),
      decided ? null : h('div', { class: 'field' }, h('label', { for: 'inbox-status' }, 'Status'), status),
      h('div', { class: 'field' }, h('label', { for: 'inbox-sort' }, 'Sort by'), sort)),
    list, more);

  // What has been read so far, per query: a poll reads as many again from the start (at most 100),
  // "Load more" follows each list's cursor.
  let lists = [];
  let lastSignature = null;
  const redraw = ({ quiet = false } = {}) => {
    const seen = new Map();
    for (const read of lists) for (const task of read.items) seen.set(task.id, task);
    const needle = params.q.trim().toLowerCase();
    const tasks = [...seen.values()]
      .filter((t) => !needle || [t.title, t.step_name, t.workflow].some((v) => String(v || '').toLowerCase().includes(needle)))
      .sort(ORDER[params.sort]);
    const signature = JSON.stringify([params.q, params.sort, tasks.map((t) => [t.id, t.status, t.assignee])]);
    if (signature === lastSignature) return;
    if (quiet && lastSignature !== null) announce('The inbox changed.');
    lastSignature = signature;
    clear(list, taskTable(tasks, params, seen.size));
    const open = lists.filter((r) => r.cursor);
    clear(more, open.length ? h('button', { type: 'button', id: 'inbox-more', onclick: loadMore }, 'Load more tasks') : null);
  };
  const fetchList = (query, limit, cursor) => api.get(`/tasks${qs({
    ...query, ...(decided ? {} : { status: params.status }), limit, ...(cursor ? { cursor } : {}) })}`);
  const load = async ({ quiet = false } = {}) => {
    const queries = queriesFor(params);
    if (!queries) {
      clear(list, h('p', { class: 'message message-info' },
        params.view === 'groups' ? 'Enter your groups at the top of the page to see their tasks.'
          : 'Enter your user at the top of the page to see your tasks.'));
      return;
    }
    const pages = await Promise.all(queries.map((q, i) => fetchList(q, Math.min(100, Math.max(PAGE, lists[i]?.items.length || 0)))));
    if (!context.alive) return;
    lists = queries.map((query, i) => ({ query, items: pages[i].items || [], cursor: pages[i].next_cursor }));
    redraw({ quiet });
  };
  const loadMore = async () => {
    const pages = await Promise.all(lists.map((r) => (r.cursor ? fetchList(r.query, PAGE, r.cursor) : null)));
    if (!context.alive) return;
    lists.forEach((r, i) => {
      if (!pages[i]) return;
      r.items = [...r.items, ...(pages[i].items || [])];
      r.cursor = pages[i].next_cursor;
    });
    redraw();
    announce('More tasks loaded.');
  };

  status.addEventListener('change', () => {
    params.status = status.value;
    context.setQuery(params);
    lists = [];
    lastSignature = null;
    load();
  });
  search.addEventListener('input', () => { params.q = search.value; redraw(); });
  search.addEventListener('change', () => context.setQuery(params));
  sort.addEventListener('change', () => { params.sort = sort.value; context.setQuery(params); redraw(); });
  const slash = (event) => {
    if (!context.alive) { document.removeEventListener('keydown', slash); return; }
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target?.tagName || '') || event.target?.isContentEditable;
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      search.focus();
    }
  };
  document.addEventListener('keydown', slash);

  await load();
  context.poll(() => load({ quiet: true }), 2000);
}

const byText = (field) => (a, b) => String(a[field] || '~').localeCompare(String(b[field] || '~'));
const ORDER = {
  priority: (a, b) => (b.priority || 0) - (a.priority || 0) || byText('due_date')(a, b) || byText('created_at')(a, b),
  due: (a, b) => byText('due_date')(a, b) || (b.priority || 0) - (a.priority || 0) || byText('created_at')(a, b),
  newest: (a, b) => byText('created_at')(b, a),
};

function who() {
  const user = identity.user;
  const groups = identity.groups;
  return h('p', { class: 'hint', id: 'inbox-identity' },
    user ? `You are ${user}` : 'You have not said who you are',
    groups.length ? ` in ${groups.join(', ')}.` : '.');
}

function queriesFor(params) {
  if (params.view === 'mine') return identity.user ? [{ assignee_id: identity.user }] : null;
  if (params.view === 'decided') return identity.user ? [{ completed_by: identity.user }] : null;
  if (params.view === 'groups') return identity.groups.length ? identity.groups.map((g) => ({ assignee_group: g })) : null;
  return [{}];
}

function taskTable(tasks, params, loaded) {
  if (!tasks.length) {
    return h('p', { id: 'inbox-empty' }, loaded ? `None of the ${loaded} tasks loaded matches the search.`
      : params.view === 'decided' ? 'You have not decided any task yet.' : `No ${params.status} tasks here.`);
  }
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
      task.completed_by ? [h('dt', {}, 'Decided by'), h('dd', { id: 'task-completed-by' }, task.completed_by)] : null,
      h('dt', {}, 'Workflow'), h('dd', {}, task.workflow || task.definition_name || '—', ' ', instanceLink),
      h('dt', {}, 'Step'), h('dd', {}, task.step_name),
      h('dt', {}, 'Assignee'), h('dd', { id: 'task-assignee' }, task.assignee || '—'),
      h('dt', {}, 'Groups'), h('dd', {}, [task.assignee_group, ...(task.candidate_groups || [])].filter(Boolean).join(', ') || '—'),
      h('dt', {}, 'Due'), h('dd', {}, when(task.due_date)),
      h('dt', {}, 'Priority'), h('dd', {}, task.priority ?? 0),
      h('dt', {}, 'Created'), h('dd', {}, when(task.created_at))),
    decisionsSection(task),
    outcome.element);

  const history = h('section', { class: 'panel', 'aria-labelledby': 'history-title', id: 'task-history' },
    h('h2', { id: 'history-title' }, 'The instance so far'), h('p', { class: 'hint' }, 'Loading…'));
  const aside = h('div', { class: 'stack' }, contextPanel(task), history);
  instanceHistory(task, history, context);

  if (task.status !== 'pending') {
    outcome.showNode(h('span', {}, `This task is ${task.status}`,
      task.completed_by ? ` (by ${task.completed_by}, ${when(task.completed_at)})` : '', '.'), 'info');
    main.append(h('div', { class: 'columns' },
      h('section', { class: 'panel', 'aria-labelledby': 'submitted-title' },
        h('h2', { id: 'submitted-title' }, 'Submitted'), task.output_data ? pretty(task.output_data) : h('p', {}, '—')),
      aside));
    return;
  }
  const form = completeForm(task, outcome, instanceLink);
  main.append(
    h('div', { class: 'columns' },
      h('div', { class: 'stack' },
        h('section', { class: 'panel', 'aria-labelledby': 'complete-title' },
          h('h2', { id: 'complete-title' }, 'Decide'),
          h('p', { class: 'hint' }, 'Ctrl+Enter (⌘+Enter) sends the form from any of its fields.'), form),
        h('section', { class: 'panel', 'aria-labelledby': 'manage-title' },
          h('h2', { id: 'manage-title' }, 'Claim or reassign'), claimForm(task), reassignForm(task))),
      aside));
}

// What the step declares its decider sees (captured when the task opened), read-only.
function contextPanel(task) {
  const values = task.context || [];
  return h('section', { class: 'panel', 'aria-labelledby': 'context-title', id: 'task-context' },
    h('h2', { id: 'context-title' }, 'What to decide on'),
    values.length ? h('dl', { class: 'facts' }, values.map((c) => [
      h('dt', {}, c.label),
      h('dd', { dataset: { label: c.label } }, c.value === null || c.value === undefined ? '—'
        : typeof c.value === 'object' ? pretty(c.value) : String(c.value))]))
      : h('p', { class: 'hint' }, 'This step shows no data of its instance.'));
}

// The instance's steps so far: which ran, in what order, how they ended (no data: that is the context's).
async function instanceHistory(task, panel, context) {
  if (!task.instance_id) { clear(panel, h('h2', { id: 'history-title' }, 'The instance so far'), h('p', {}, '—')); return; }
  try {
    const instance = await api.get(`/instances/${enc(task.instance_id)}${qs({ include_outputs: false })}`);
    if (!context.alive) return;
    const steps = instance.step_history || [];
    clear(panel, h('h2', { id: 'history-title' }, 'The instance so far'),
      h('p', {}, 'Started ', when(instance.created_at), instance.created_by ? ` by ${instance.created_by}` : '', '.'),
      steps.length ? h('ol', { class: 'history', id: 'task-history-steps' }, steps.map((step) => h('li', {},
        h('span', {}, step.step_name), ' ', statusBadge(step.status), ' ', h('span', { class: 'hint' }, when(step.completed_at || step.started_at)))))
        : h('p', { class: 'hint' }, 'No step has run yet.'));
  } catch (error) {
    clear(panel, h('h2', { id: 'history-title' }, 'The instance so far'),
      h('p', { class: 'hint' }, `Not available: ${error.message}`));
  }
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
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit(button);
    }
  });

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
