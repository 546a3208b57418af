// The instance page's timeline: one row per step, one bar per attempt on a time axis the rows share,
// built from the followed event log as its events arrive (step.started / retried / failed / succeeded,
// task.created / completed), completed from the step history for steps that write no event.

import { clear, h } from './dom.js';

// How an attempt ended: a bar's class (outcome-*) and its words.
const OUTCOMES = {
  running: 'running', waiting: 'waiting', succeeded: 'succeeded', retried: 'failed, retried',
  failed: 'failed', canceled: 'canceled', timed_out: 'timed out',
};
const OPEN = new Set(['running', 'waiting']);
const ENDED_AS = { completed: 'succeeded', failed: 'failed', canceled: 'canceled' };

const time = (value) => {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? null : ms;
};

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60000);
  return minutes < 60 ? `${minutes} min ${Math.round((ms % 60000) / 1000)} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export class Timeline {
  // `onSelect(step)`: a step's row was chosen.
  constructor({ onSelect } = {}) {
    this.onSelect = onSelect || (() => {});
    this.steps = new Map(); // step name -> { name, attempts: [{attempt, start, end, outcome, error, fallback}] }
    this.selected = null;
    this.drawing = false;
    this.element = h('div', { id: 'timeline', class: 'timeline', dataset: { steps: '0' } });
    this.draw();
  }

  step(name) {
    if (!this.steps.has(name)) this.steps.set(name, { name, attempts: [], record: null });
    return this.steps.get(name);
  }

  // One event of the followed log; the drawing follows once the events that came together are in.
  addEvent(event) {
    const data = event.data || {};
    if (event.type === 'instance.started' && ['resume', 'redrive'].includes(data.run)) {
      this.closeOpen(event.at, 'failed'); // what the earlier run left open ended with it
    } else if (event.type === 'instance.ended') {
      this.closeOpen(event.at, ENDED_AS[data.status] || 'failed');
    } else if (event.step) {
      const step = this.step(event.step);
      // The log tells this step's attempts: the one bar its record gave (drawn before the log arrived) goes.
      if (step.attempts.some((a) => a.fromRecord)) step.attempts = step.attempts.filter((a) => !a.fromRecord);
      const open = step.attempts.findLast((a) => OPEN.has(a.outcome));
      const error = data.error ? { error: data.error, message: data.message } : null;
      switch (event.type) {
        case 'step.started':
          if (!step.attempts.some((a) => a.attempt === data.attempt && !!a.fallback === !!data.fallback && a.start === event.at)) {
            if (open) Object.assign(open, { end: event.at, outcome: 'failed' });
            step.attempts.push({ attempt: data.attempt ?? step.attempts.length + 1, start: event.at, end: null,
              outcome: 'running', fallback: !!data.fallback });
          }
          break;
        case 'task.created':
          if (!open) step.attempts.push({ attempt: 1, start: event.at, end: null, outcome: 'waiting', task: true });
          break;
        case 'step.retried':
          if (open) Object.assign(open, { end: event.at, outcome: 'retried', error });
          break;
        case 'step.failed':
          if (open) Object.assign(open, { end: event.at, outcome: 'failed', error });
          break;
        case 'step.succeeded':
        case 'task.completed':
          if (open) Object.assign(open, { end: event.at, outcome: 'succeeded' });
          break;
        default:
          return; // a step's own events: its bar does not change
      }
    } else {
      return;
    }
    this.later();
  }

  closeOpen(at, outcome) {
    for (const step of this.steps.values()) {
      for (const attempt of step.attempts) {
        if (OPEN.has(attempt.outcome)) Object.assign(attempt, { end: at, outcome });
      }
    }
  }

  // The instance as the API reads it: each step's record (status, times, clean error); a step the log
  // holds nothing of (a gateway, a timer) gets one bar from its record.
  setHistory(records) {
    for (const record of records || []) {
      const step = this.step(record.step_name);
      step.record = record;
      const ended = !OPEN.has(record.status) && record.status !== 'pending';
      if (!step.attempts.length && record.started_at) {
        step.attempts.push({ attempt: record.attempts || 1, start: record.started_at,
          end: ended ? record.completed_at : null, outcome: OUTCOMES[record.status] ? record.status : 'running',
          error: record.error, fromRecord: true });
      } else if (ended) {
        const open = step.attempts.findLast((a) => OPEN.has(a.outcome));
        if (open) Object.assign(open, { end: record.completed_at || open.start, outcome: record.status, error: record.error });
      }
    }
    this.later();
  }

  select(name) {
    this.selected = name;
    this.draw();
    this.element.querySelector(`[data-step="${CSS.escape(name)}"] .timeline-step`)?.focus();
  }

  later() {
    if (this.drawing) return;
    this.drawing = true;
    queueMicrotask(() => { this.drawing = false; this.draw(); });
  }

  rows() {
    return [...this.steps.values()].filter((s) => s.attempts.length)
      .sort((a, b) => (time(a.attempts[0].start) ?? Infinity) - (time(b.attempts[0].start) ?? Infinity));
  }

  draw() {
    // A redraw replaces the rows: the step whose button had the focus keeps it.
    const focused = this.element.contains(document.activeElement)
      ? document.activeElement.closest('[data-step]')?.dataset.step : null;
    this.paint();
    if (focused) this.element.querySelector(`[data-step="${CSS.escape(focused)}"] .timeline-step`)?.focus();
  }

  paint() {
    const rows = this.rows();
    this.element.dataset.steps = String(rows.length);
    if (!rows.length) {
      clear(this.element, h('p', { class: 'hint' }, 'No step has started yet.'));
      return;
    }
    const now = Date.now();
    const starts = rows.flatMap((s) => s.attempts.map((a) => time(a.start))).filter((t) => t !== null);
    const ends = rows.flatMap((s) => s.attempts.map((a) => (a.end ? time(a.end) : now))).filter((t) => t !== null);
    const first = Math.min(...starts);
    const span = Math.max(Math.max(...ends) - first, 1);
    const at = (t) => ((t - first) / span) * 100;
    clear(this.element,
      h('div', { class: 'timeline-axis', 'aria-hidden': 'true' },
        h('span', {}, '0 s'), h('span', {}, duration(span / 2)), h('span', {}, duration(span))),
      h('ol', { class: 'timeline-rows', 'aria-label': `Steps on a time axis of ${duration(span)}` },
        rows.map((step) => this.row(step, at, now))));
  }

  row(step, at, now) {
    const last = step.attempts.at(-1);
    const tries = step.attempts.filter((a) => !a.fallback && !a.task).length;
    const attempts = Math.max(tries, step.record?.attempts || 0);
    const start = time(step.attempts[0].start);
    const end = last.end ? time(last.end) : now;
    const status = step.record && !OPEN.has(step.record.status) ? step.record.status : last.outcome;
    const facts = `${duration(end - start)}${OPEN.has(last.outcome) ? ' so far' : ''}${attempts > 1 ? ` · ${attempts} attempts` : ''}`;
    const chosen = this.selected === step.name;
    return h('li', { class: `timeline-row${chosen ? ' selected' : ''}`, dataset: { step: step.name, status, attempts } },
      h('button', { type: 'button', class: 'timeline-step', 'aria-pressed': chosen ? 'true' : 'false',
        onclick: () => { this.selected = step.name; this.draw(); this.onSelect(step.name); } },
      h('span', { class: 'timeline-name' }, step.name), h('span', { class: 'timeline-facts' }, facts)),
      h('div', { class: 'timeline-track' }, step.attempts.map((a) => {
        const from = time(a.start) ?? start;
        const to = a.end ? (time(a.end) ?? from) : now;
        const label = `${a.fallback ? 'fallback' : a.task ? 'waiting for its task' : `attempt ${a.attempt}`}: `
          + `${OUTCOMES[a.outcome] || a.outcome}, ${duration(to - from)}`
          + `${a.error ? ` — ${a.error.error || ''}${a.error.message ? `: ${a.error.message}` : ''}` : ''}`;
        const bar = h('span', { class: `timeline-bar outcome-${a.outcome}${a.fallback ? ' fallback' : ''}`,
          title: label, dataset: { attempt: a.attempt, outcome: a.outcome } },
        h('span', { class: 'visually-hidden' }, label));
        bar.style.left = `${at(from).toFixed(3)}%`;
        bar.style.width = `${Math.max(at(to) - at(from), 0).toFixed(3)}%`;
        return bar;
      })));
  }
}
