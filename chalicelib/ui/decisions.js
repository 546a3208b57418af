// A task's people: who decided it so far (quorum progress), who may not (four-eyes), and how who works it changed.

import { h, when } from './dom.js';

export function decisionsSection(task) {
  const parts = [];
  const q = task.quorum;
  if (q) {
    parts.push(h('p', { id: 'quorum-progress' }, `${q.approved} of ${q.required} approvals`,
      q.out_of ? ` (${q.out_of} asked)` : '', q.rejected ? `, ${q.rejected} rejected` : '', q.of ? ` · group ${q.of}` : ''),
    h('progress', { max: q.required, value: Math.min(q.approved, q.required), 'aria-labelledby': 'quorum-progress' }));
  }
  if (task.decisions?.length) {
    parts.push(h('ul', { id: 'task-decisions' }, task.decisions.map((d) => h('li', { dataset: { by: d.by || '' } },
      h('strong', {}, d.by || 'someone'), d.approved ? ' approved' : ' rejected', ` · ${when(d.at)}`,
      d.via === 'link' ? ' · through a link' : '', d.comment ? ` — ${d.comment}` : ''))));
  } else if (q) {
    parts.push(h('p', { class: 'lead' }, 'Nobody has decided yet.'));
  }
  if (task.distinct_from?.length) {
    parts.push(h('p', { id: 'task-four-eyes' }, 'May not decide (four-eyes): ',
      task.distinct_from.map((r) => `${r.principal} (${r.rule.replace(/_/g, ' ')})`).join(', ')));
  }
  if (task.assignments?.length) {
    const who = (side) => side?.assignee || side?.group || '—';
    parts.push(h('h3', {}, 'Assignment history'), h('ol', { id: 'task-assignments' }, task.assignments.map((a) =>
      h('li', {}, `${when(a.at)}: ${who(a.from)} → ${who(a.to)} (${a.action.replace(/_/g, ' ')}${a.by ? ` by ${a.by}` : ''})`,
        a.reason ? `: ${a.reason}` : ''))));
  }
  if (!parts.length) return null;
  return h('section', { class: 'panel', id: 'task-people', 'aria-labelledby': 'task-people-title' },
    h('h2', { id: 'task-people-title' }, q ? 'Decisions (quorum)' : 'Decisions and assignment'), ...parts);
}
