// The instance page's "Send an event" form: to a receive step of the instance that waits now
// (POST /instances/{id}/events with its event type and step), the event's data written as JSON.

import { api, ApiError } from './api.js';
import { clear, h, messageBox } from './dom.js';

const enc = encodeURIComponent;

// Draws the form for the instance's waiting receive steps (`tasks`: its task views), or nothing.
export function renderSendEvent(box, tasks, instanceId, { onSent } = {}) {
  const waiting = tasks.filter((t) => t.kind === 'receive' && t.status === 'pending');
  const shown = waiting.map((t) => t.id).join();
  if (box.dataset.shown === shown) return;
  box.dataset.shown = shown;
  if (!waiting.length) {
    clear(box);
    return;
  }
  const message = messageBox('send-event-message');
  const step = h('select', { id: 'send-event-step', name: 'step' },
    waiting.map((t) => h('option', { value: t.id }, `${t.step_name} (${t.event_type})`)));
  const data = h('textarea', { id: 'send-event-data', name: 'data', rows: 4, class: 'json-input', spellcheck: 'false' }, '{}');
  const button = h('button', { type: 'submit', id: 'send-event-submit' }, 'Send event');
  const form = h('form', { id: 'send-event-form', onsubmit: async (event) => {
    event.preventDefault();
    const task = waiting.find((t) => t.id === step.value);
    let body;
    try {
      body = JSON.parse(data.value || '{}');
    } catch (error) {
      message.show(`The data is not JSON: ${error.message}`, 'error');
      return;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      message.show('The data is a JSON object: its fields become the step\'s output.', 'error');
      return;
    }
    button.disabled = true;
    message.show('Sending…');
    try {
      const sent = await api.post(`/instances/${enc(instanceId)}/events`,
        { type: task.event_type, step: task.step_name, data: body });
      message.show(sent.status === 'delivered' ? `Event delivered to ${task.step_name}.`
        : `Event ${sent.status}.`, 'success');
      box.dataset.sent = task.step_name;
      if (onSent) onSent(sent);
    } catch (error) {
      message.show(`Sending failed: ${error instanceof ApiError ? error.message : error}`, 'error');
    } finally {
      button.disabled = false;
    }
  } },
  h('label', { for: 'send-event-step' }, 'Receive step'), step,
  h('label', { for: 'send-event-data' }, 'Data (JSON)'), data,
  button);
  clear(box, h('h2', { id: 'send-event-title' }, 'Send an event'),
    h('p', { class: 'hint' }, 'A step of this instance waits for an event; its data becomes the step\'s output.'),
    form, message.element);
}
