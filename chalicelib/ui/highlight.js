// Syntax highlighting for definition sources (YAML, JSON) and unified diffs. Sources are user input,
// so the output is DOM nodes whose text is set as text: nothing here is ever parsed as HTML.

import { h } from './dom.js';

// [class, sticky pattern]; the first that matches at a position wins. A null class is plain text:
// whole words are taken at once so that digits inside a word are not coloured as a number.
const SCALAR_END = '(?=\\s*(?:#|,|\\]|\\}|$))';
const YAML = [
  ['comment', /#.*/y, (text, at) => at === 0 || /\s/.test(text[at - 1])],
  ['marker', /(?:---|\.\.\.)(?=\s|$)/y, (text, at) => at === 0 || text[at - 1] === '\n'],
  ['key', /(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s"'#:[\]{},&*!|>-][^:\n#]*?|-[^\s:\n#][^:\n#]*?)(?=[ \t]*:(?:[ \t]|$))/my,
    (text, at, state) => state.keyPosition],
  ['string', /"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'/y],
  ['number', new RegExp(`[-+]?(?:0x[0-9a-fA-F]+|\\d+(?:\\.\\d+)?(?:[eE][-+]?\\d+)?)${SCALAR_END}`, 'my')],
  ['literal', new RegExp(`(?:true|false|null|True|False|Null|TRUE|FALSE|NULL|~)${SCALAR_END}`, 'my')],
  ['anchor', /[&*][^\s,[\]{}]+/y],
  ['punct', /[-:?,[\]{}|>]/y],
  [null, /[^\s"'#:,[\]{}]+/y],
];
const JSON_RULES = [
  ['key', /"(?:[^"\\\n]|\\.)*"(?=\s*:)/y],
  ['string', /"(?:[^"\\\n]|\\.)*"/y],
  ['number', /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/y],
  ['literal', /\b(?:true|false|null)\b/y],
  ['punct', /[{}[\],:]/y],
  [null, /[^\s"{}[\],:]+/y],
];

// The tokens of `text`: [class or null, piece], pieces in order and together exactly `text`.
export function tokenize(text, language) {
  const rules = language === 'yaml' ? YAML : language === 'json' ? JSON_RULES : [];
  const tokens = [];
  let plain = '';
  let at = 0;
  // A mapping key can only start a line (after indentation and list dashes) or follow '{' or ','; the
  // key pattern is tried only there, which keeps a long line linear.
  const state = { keyPosition: true };
  const flush = () => { if (plain) { tokens.push([null, plain]); plain = ''; } };
  const consumed = (kind, piece) => {
    if (/^\s+$/.test(piece)) state.keyPosition ||= piece.includes('\n');
    else state.keyPosition = kind === 'punct' && '-?{,'.includes(piece);
  };
  outer: while (at < text.length) {
    for (const [kind, pattern, allowed] of rules) {
      if (allowed && !allowed(text, at, state)) continue;
      pattern.lastIndex = at;
      const match = pattern.exec(text);
      if (match && match[0].length) {
        if (kind) { flush(); tokens.push([kind, match[0]]); } else plain += match[0];
        at += match[0].length;
        consumed(kind, match[0]);
        continue outer;
      }
    }
    plain += text[at];
    consumed(null, text[at]);
    at += 1;
  }
  flush();
  return tokens;
}

// A <pre><code> with the source highlighted; `language` is "yaml", "json" or anything else for plain text.
export function highlighted(text, language, attrs = {}) {
  const nodes = tokenize(String(text ?? ''), language).map(([kind, piece]) => (
    kind ? h('span', { class: `tok-${kind}` }, piece) : piece));
  return h('pre', { class: 'source', ...attrs }, h('code', { 'data-language': language || 'text' }, nodes));
}

// A unified diff, one block per line, coloured by its first character (which stays visible: the
// colour is never the only sign of an added or removed line).
export function diffLines(diff, attrs = {}) {
  const lines = String(diff ?? '').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return h('pre', { class: 'diff', ...attrs }, h('code', {}, lines.map((line) => {
    let kind = 'context';
    if (line.startsWith('+++') || line.startsWith('---')) kind = 'file';
    else if (line.startsWith('@@')) kind = 'hunk';
    else if (line.startsWith('+')) kind = 'add';
    else if (line.startsWith('-')) kind = 'del';
    return h('span', { class: `diff-line diff-${kind}` }, line || ' ');
  })));
}
