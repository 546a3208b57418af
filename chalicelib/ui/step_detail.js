// The instance page's step detail (a chosen step's status, attempts, clean error, input and output) and
// its failure lead: a failed instance's page starts with the failing step's error, linked to that step.

import { clear, h, statusBadge, when } from './dom.js';

export const SHOWN_CHARACTERS = 4000; // a value's JSON beyond this is cut, with a note saying so

// A value as indented JSON, as text (never markup), cut at `limit` characters with a note.
export function jsonBlock(value, id, limit = SHOWN_CHARACTERS) {
  const text = JSON.stringify(value ?? null, null, 2) ?? 'null';
  if (text.length <= limit) return h('pre', { class: 'json', id }, text);
  return [h('pre', { class: 'json', id, dataset: { truncated: 'true' } }, `${text.slice(0, limit)}\n…`),
    h('p', { class: 'hint truncated-note' },
      `Showing the first ${limit.toLocaleString('en')} of ${text.length.toLocaleString('en')} characters.`)];
}

export function errorText(error) {
  if (!error) return '';
  return `${error.error || 'Error'}${error.message ? `: ${error.message}` : ''}`;
}

// The step the instance failed at: its failed record with the instance's error, else the last failed one.
export function failingStep(instance) {
  const failed = (instance.step_history || []).filter((s) => ['failed', 'timed_out'].includes(s.status) && s.error);
  const same = failed.filter((s) => instance.error && s.error.error === instance.error.error);
  return (same.length ? same : failed).at(-1) || null;
}

// Shows the failure first on a failed instance (nothing otherwise); `onStep(name)` goes to its step.
export function renderFailureLead(box, instance, onStep) {
  if (instance.status !== 'failed') {
    clear(box);
    box.hidden = true;
    return;
  }
  const step = failingStep(instance);
  const error = (step && step.error) || instance.error;
  const shown = JSON.stringify([step?.step_name, error]);
  if (box.dataset.shown === shown) return;
  box.dataset.shown = shown;
  box.hidden = false;
  clear(box,
    h('h2', { id: 'failure-title' }, step ? 'Failed at step ' : 'Failed',
      step ? h('button', { type: 'button', class: 'link', id: 'failure-step', onclick: () => onStep(step.step_name) },
        step.step_name) : null),
    error ? h('p', { id: 'failure-error' }, h('code', { class: 'error-type' }, error.error || 'Error'),
      error.message ? ` ${error.message}` : '') : h('p', {}, 'The instance failed without an error message.'),
    step && step.attempts > 1 ? h('p', { class: 'hint' }, `After ${step.attempts} attempts.`) : null);
}

// The chosen step's detail from its record in the instance's step history (read with its input);
// `loading`: that read is on its way.
export function renderStepDetail(box, instance, name, { loading = false } = {}) {
  if (!name) {
    clear(box, h('p', { class: 'hint' }, 'Choose a step in the timeline to see its input and output.'));
    box.dataset.step = '';
    return;
  }
  const record = (instance.step_history || []).find((s) => s.step_name === name);
  box.dataset.step = name;
  if (!record) {
    clear(box, h('h3', { id: 'step-detail-title' }, name), h('p', { class: 'hint' }, 'This step has not started yet.'));
    return;
  }
  const open = ['running', 'waiting'].includes(record.status);
  clear(box,
    h('h3', { id: 'step-detail-title' }, name, ' ', statusBadge(record.status)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Started'), h('dd', {}, when(record.started_at)),
      h('dt', {}, 'Completed'), h('dd', {}, when(record.completed_at)),
      h('dt', {}, 'Attempts'), h('dd', {}, String(record.attempts ?? '—')),
      record.fallback_used ? [h('dt', {}, 'Fallback'), h('dd', {}, 'used')] : null),
    record.error ? h('p', { class: 'message message-error', id: 'step-detail-error' }, errorText(record.error)) : null,
    h('h4', {}, 'Input'),
    'input' in record ? jsonBlock(record.input, 'step-input')
      : h('p', { class: 'hint', id: 'step-input' }, loading ? 'Loading…' : 'Not shown by this server.'),
    h('h4', {}, 'Output'),
    record.output !== undefined && record.output !== null ? jsonBlock(record.output, 'step-output')
      : h('p', { class: 'hint', id: 'step-output' }, open ? 'No output yet: the step has not finished.' : 'No output.'));
}
