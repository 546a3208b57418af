// Browser scenarios for the Stepflow UI, run by tests/browser/conftest.py as
//   node tests/browser/scenarios.mjs '<json: {scenarios: [names], base, shots, failures}>'
// Debian's /usr/bin/chromium, driven by playwright-core (no browser download): one browser (a fresh
// profile), each scenario in its own context, all at once (they mostly wait for the workflows).
// Prints one JSON line per scenario; a failed one leaves a screenshot of its page in `failures`.

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2] || '{}');
const { base, shots } = options;
const CHROMIUM = process.env.STEPFLOW_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
// How Mermaid draws each step type: rectangle, hexagon (6 points), diamond (4), stadium (a path), subroutine (10).
const SHAPES = { machine: 'rect', human: 'polygon6', gateway: 'polygon4', timer: 'g', webhook: 'polygon10' };
const FILLS = { completed: 'rgb(144, 238, 144)', current: 'rgb(255, 215, 0)', failed: 'rgb(255, 107, 107)' };

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// How long one condition may take: the machine running these is busy (other test runs share its cores).
const PATIENT = 60000;

// Types `value` into a field once it is visible and enabled, and again if a redraw replaced the field
// meanwhile (the locator then finds the new one, which does not hold the value): done when it holds it.
async function fillReady(locator, value) {
  const deadline = Date.now() + PATIENT;
  for (;;) {
    await locator.waitFor({ state: 'visible', timeout: PATIENT });
    await locator.fill(value, { timeout: PATIENT });
    const held = await locator.inputValue({ timeout: PATIENT }).catch(() => null);
    if (held === value) return;
    check(Date.now() < deadline, `the field did not keep the value typed into it: ${held}`);
  }
}

// One scenario's browser context, the problems its pages report, and its screenshots.
class Run {
  constructor(browser, name) {
    this.browser = browser;
    this.name = name;
    this.problems = [];
    this.marks = [];
    this.started = Date.now();
  }

  async open() {
    this.context = await this.browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC', locale: 'en-GB' });
    this.context.setDefaultTimeout(PATIENT);
    this.context.on('page', (page) => {
      page.on('pageerror', (error) => this.problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        // The API's validation and sign-in answers (400, 401, 409, 422) are expected in these flows, and
        // the 404 the history scenario asks for (a revision that does not exist).
        const expected = /Failed to load resource: the server responded with a status of (400|401|409|412|422)/.test(message.text())
          || (/status of 404/.test(message.text()) && /\/revisions\/99$/.test(message.location().url));
        if (message.type() === 'error' && !expected) this.problems.push(`console error: ${message.text()}`);
      });
    });
    return this;
  }

  // Elapsed seconds at each screenshot are reported with the outcome (where a slow run spends its time).
  async shot(page, name) {
    this.marks.push([name, (Date.now() - this.started) / 1000]);
    if (!shots) return;
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  }
}

async function apiGet(pathname) {
  const response = await fetch(`${base}/workflows${pathname}`);
  check(response.ok, `GET ${pathname} answered ${response.status}`);
  return response.json();
}

// The rendered graph's nodes: the step each one draws, its state class, its label text and its fill.
async function graphNodes(page, selector) {
  return page.$$eval(`${selector} svg g.node`, (nodes) => nodes.map((node) => {
    const container = node.querySelector(':scope > .label-container');
    const shape = container?.tagName === 'g' ? container.querySelector('path') : container;
    const states = ['completed', 'current', 'waiting', 'failed', 'canceled', 'not_reached'];
    return {
      id: node.id,
      state: states.find((s) => node.classList.contains(s)) || null,
      label: (node.querySelector('.nodeLabel, .label')?.textContent || '').replace(/\s+/g, ' ').trim(),
      fill: shape ? getComputedStyle(shape).fill : null,
      shape: container ? `${container.tagName}${container.tagName === 'polygon' ? container.points.length : ''}` : null,
    };
  }));
}

async function waitForGraph(page, selector) {
  await page.waitForSelector(`${selector}[data-graph-state="rendered"], ${selector}[data-graph-state="error"]`);
  const state = await page.getAttribute(selector, 'data-graph-state');
  const error = await page.getAttribute(selector, 'data-graph-error');
  check(state === 'rendered', `the graph did not render: ${error}`);
}

async function waitForInstance(page, status, timeout = 30000) {
  await page.waitForSelector(`#instance-graph[data-instance-status="${status}"][data-graph-state="rendered"]`, { timeout });
}

// Every form control on the page has a label a screen reader announces.
async function unlabelled(page, selector) {
  return page.$$eval(`${selector} input, ${selector} select, ${selector} textarea`, (controls) => controls
    .filter((c) => c.type !== 'hidden' && c.labels.length === 0 && !c.getAttribute('aria-label'))
    .map((c) => c.outerHTML));
}

// The history scenario at `stage` (a path before /ui, '' for none) with the API at `apiPrefix`.
async function historyFlow(run, name, stage, apiPrefix) {
  const { context } = run;
  const definition = historyDefinition(name);
  const first = await fetch(`${base}/workflows/definitions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(definition, null, 2) });
  check(first.status === 201, `registering ${name} answered ${first.status}`);
  const yamlSource = historyYaml(name);
  const second = await fetch(`${base}/workflows/definitions/${name}`, {
    method: 'PUT', headers: { 'Content-Type': 'application/x-yaml' }, body: yamlSource });
  check(second.status === 201, `the PUT answered ${second.status}: ${await second.text()}`);

  const page = await context.newPage();
  const shot = (title) => (stage ? null : run.shot(page, title)); // one set of pictures is enough
  await page.goto(`${base}${stage}/ui#/workflows`);
  await page.getByRole('link', { name, exact: true }).click();
  await waitForGraph(page, '#definition-graph');
  await page.click('#tab-history');
  await page.waitForSelector('#revision-source');
  const numbers = () => page.$$eval('#revisions tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.number)));
  check(JSON.stringify(await numbers()) === '[2,1]', `revisions newest first: ${await numbers()}`);
  // `live` follows the latest revision: all of it on revision 2.
  const liveRoutes = await page.$$eval('#aliases tr[data-alias="live"] li', (lis) => lis.map((li) => li.textContent.trim()));
  check(JSON.stringify(liveRoutes) === JSON.stringify(['revision 2: weight 100 (100%)']), `live: ${JSON.stringify(liveRoutes)}`);
  const change = await page.textContent('#revisions tbody tr[data-number="2"] .change');
  check(change.includes('changed record'), `revision 2's change: ${change}`);

  // The newest revision's source (YAML), highlighted, its markup shown as text.
  const yaml = await sourceShown(page, 2, 'yaml');
  check(yaml.text === yamlSource, 'the YAML source is shown exactly as submitted');
  await shot('definition-history');
  await page.getByRole('link', { name: 'View revision 1' }).click();
  const json = await sourceShown(page, 1, 'json');
  check(json.text.includes('<script>window.__pwned=3</script>'), 'the JSON source shows its title as text');

  // The diff between the two (the radios start on the two newest).
  await page.getByRole('button', { name: 'Compare' }).click();
  await page.waitForSelector('#diff[data-from="1"][data-to="2"]');
  check(page.url().includes('from=1') && page.url().includes('to=2') && page.url().includes('rev=1'), `the diff's address: ${page.url()}`);
  const structural = await page.textContent('#diff-structural');
  check(structural.includes('record (config)'), `the structural diff: ${structural}`);
  const added = await page.$$eval('#diff-source .diff-add', (lines) => lines.map((l) => l.textContent));
  const removed = await page.$$eval('#diff-source .diff-del', (lines) => lines.map((l) => l.textContent));
  check(added.some((l) => l.includes('note: second')), `added lines: ${JSON.stringify(added)}`);
  check(removed.some((l) => l.includes('"first"')), `removed lines: ${JSON.stringify(removed)}`);
  const colours = await page.$eval('#diff-source .diff-add', (l) => getComputedStyle(l).backgroundColor);
  check(colours === 'rgb(218, 251, 225)', `an added line's background: ${colours}`);
  await shot('definition-diff');
  check(await page.evaluate(() => window.__pwned ?? null) === null, 'markup from a source ran');

  // Restore revision 1: a third revision, restored from the first.
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#revisions button[data-restore="1"]');
  await page.waitForSelector('#revisions tbody tr[data-number="3"]');
  const afterRestore = await numbers();
  check(JSON.stringify(afterRestore) === '[3,2,1]', `after the restore: ${afterRestore}`);
  check((await page.textContent('#revisions tbody tr[data-number="3"] .change')).includes('restore of #1'), 'the restore is named');
  check((await page.textContent('#definition-message')).includes('restored as revision 3'), 'the restore is reported');
  const third = await apiGet(`/definitions/${name}/revisions/3`);
  const firstDetail = await apiGet(`/definitions/${name}/revisions/1`);
  check(third.revision === firstDetail.revision && third.restored_from === 1, 'revision 3 has revision 1\'s content');

  // A canary alias set through the API (90 % on revision 3, 10 % on 2): its weights, each route linking
  // to its revision.
  const canary = await fetch(`${base}/workflows/definitions/${name}/aliases/canary`, {
    method: 'PUT', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ routes: [{ revision: 3, weight: 90 }, { revision: 2, weight: 10 }] }) });
  check(canary.status === 200 || canary.status === 201, `setting the canary alias answered ${canary.status}: ${await canary.text()}`);
  await page.goto(`${base}${stage}/ui#/workflows/${name}/history`);
  await page.waitForSelector('#aliases tr[data-alias="canary"]');
  const routes = await page.$$eval('#aliases tr[data-alias="canary"] li', (lis) => lis.map((li) => [li.dataset.revision, li.textContent.trim()]));
  check(JSON.stringify(routes) === JSON.stringify([['3', 'revision 3: weight 90 (90%)'], ['2', 'revision 2: weight 10 (10%)']]),
    `alias routes: ${JSON.stringify(routes)}`);
  await shot('definition-aliases');
  // A schedule set through the API (in 2099: it fires nothing while the tests run): its next runs listed.
  const made = await fetch(`${base}/workflows/definitions/${name}/schedules`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ expression: 'cron(0 9 ? * MON-FRI 2099)', timezone: 'Europe/Paris' }) });
  check(made.status === 201, `creating the schedule answered ${made.status}`);
  const schedule = await made.json();
  await page.goto(`${base}${stage}/ui#/workflows/${name}/history?rev=3`);  // another address: the page is read again
  await page.waitForSelector(`#schedules tr[data-schedule="${schedule.id}"]`);
  const nextRuns = await page.$$eval(`#schedules tr[data-schedule="${schedule.id}"] .next-runs li`, (lis) => lis.length);
  check(nextRuns === 3, `next runs listed: ${nextRuns}`);
  check((await page.textContent(`#schedules tr[data-schedule="${schedule.id}"] code`)) === 'cron(0 9 ? * MON-FRI 2099)',
    'the expression is shown as written');
  await scheduleControls(page, name, '');
  await page.click('#aliases li[data-revision="2"] a');
  await page.waitForSelector('#revision-source[data-number="2"]');

  // A revision the workflow does not have (an old or edited address): said in place, the rest still there.
  await page.goto(`${base}${stage}/ui#/workflows/${name}/history?rev=99`);
  await page.locator('#revision-source .message-error').filter({ hasText: 'Revision 99 could not be shown' }).waitFor();
  check(JSON.stringify(await numbers()) === '[3,2,1]', 'the revisions are listed beside the error');
  await page.getByRole('link', { name: 'View revision 2' }).click();
  await page.waitForSelector('#revision-source[data-number="2"]');

  // Deactivate: shown inactive here, on the overview (no start form) and in the list only on request.
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#deactivate');
  await page.waitForSelector('#definition-status[data-active="false"]');
  check(await page.locator('#deactivate').count() === 0, 'the Deactivate button is gone once inactive');
  check((await apiGet(`/definitions/${name}`)).active === false, 'the API says inactive');
  await page.click('#tab-overview');
  await page.waitForSelector('#start-refused');
  check(await page.locator('#start-form').count() === 0, 'a deactivated workflow offers no start form');
  await page.getByRole('link', { name: 'Workflows', exact: true }).first().click();
  await page.waitForSelector('#workflows');
  check(await page.locator(`#workflows tr[data-workflow="${name}"]`).count() === 0, 'the list hides it');
  await page.click('#toggle-inactive');
  await page.waitForSelector(`#workflows tr[data-workflow="${name}"][data-active="false"]`);
  await page.click('#toggle-inactive');
  await page.waitForFunction(() => !location.hash.includes('include_inactive'));
  await page.waitForSelector('#workflows tr[data-workflow="expense_approval"]');
  if (!stage) await namespacedFlow(page, `${name}_ns`);
  return { revisions: afterRestore, yamlTokens: yaml.kinds, jsonTokens: json.kinds };
}

// A definition in a namespace: the list's link carries the namespace to its page, and the page to its
// history and every call (the name alone, outside the namespace, is not found).
async function namespacedFlow(page, name) {
  const registered = await fetch(`${base}/workflows/definitions?namespace=billing`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(historyDefinition(name)) });
  check(registered.status === 201, `registering ${name} in a namespace answered ${registered.status}`);
  // Another address than the one shown (#/workflows), so the list is read again.
  await page.goto(`${base}/ui#/workflows?include_inactive=true`);
  await page.getByRole('link', { name, exact: true }).click();
  await waitForGraph(page, '#definition-graph');
  check(await page.locator('#start-form').count() === 1, 'the namespaced workflow offers its start form');
  await page.click('#tab-history');
  await page.waitForSelector('#revision-source');
  const numbers = await page.$$eval('#revisions tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.number)));
  check(JSON.stringify(numbers) === '[1]', `the namespaced workflow's revisions: ${numbers}`);
  check((await page.evaluate(() => location.hash)).includes('namespace=billing'), 'the address keeps the namespace');
  await scheduleControls(page, name, '?namespace=billing', { backfill: true });
}

// The schedule controls of a history page: an expression the API refuses is said with its message; one
// created from the form (in 2099: it fires nothing while the tests run) is listed with its next runs,
// paused (no next runs), changed while paused (expression, time zone, overlap: it stays paused), with
// `backfill` backfilled over three past hours (three runs started, read back from the instances), resumed
// (the new expression's next runs) and deleted, each read back from the API in the definition's `scope`.
async function scheduleControls(page, name, scope, { backfill = false } = {}) {
  const listed = async () => (await apiGet(`/definitions/${name}/schedules${scope}`));
  const before = (await listed()).map((s) => s.id);
  const message = '#schedules-message';
  await fillReady(page.getByLabel('Expression', { exact: true }), 'cron(0 9 * * MON *)');
  await page.getByRole('button', { name: 'Create schedule' }).click();
  await page.waitForSelector(`${message}.message-error[role="alert"]`);
  check((await listed()).length === before.length, 'a refused expression created a schedule');
  await fillReady(page.getByLabel('Expression', { exact: true }), 'cron(30 7 ? * MON 2099)');
  await fillReady(page.getByLabel('Time zone', { exact: true }), 'Asia/Tokyo');
  await page.getByLabel('Overlap', { exact: true }).selectOption('buffer_one');
  await page.getByRole('button', { name: 'Create schedule' }).click();
  await page.waitForSelector(`${message}.message-success`);
  const made = (await listed()).find((s) => !before.includes(s.id));
  check(made && made.timezone === 'Asia/Tokyo' && made.overlap === 'buffer_one' && made.expression === 'cron(30 7 ? * MON 2099)',
    `the schedule the form made: ${JSON.stringify(made)}`);
  const row = `#schedules tr[data-schedule="${made.id}"]`;
  await page.waitForSelector(`${row}[data-state="enabled"]`);
  check(await page.locator(`${row} .next-runs li`).count() === 3, 'the new schedule\'s next runs are not listed');
  await page.getByRole('button', { name: `Pause ${made.id}` }).click();
  await page.waitForSelector(`${row}[data-state="paused"]`);
  check(await page.locator(`${row} .next-runs li`).count() === 0, 'a paused schedule lists next runs');
  check((await listed()).find((s) => s.id === made.id).state === 'paused', 'the API does not have it paused');

  // Changed from its row: every hour on the hour, in UTC, overlap allow; still paused.
  const hourly = 'cron(0 * * * ? *)';
  await page.getByText(`Change or backfill ${made.id}`, { exact: true }).click();
  await fillReady(page.getByLabel(`Expression of ${made.id}`, { exact: true }), hourly);
  await fillReady(page.getByLabel(`Time zone of ${made.id}`, { exact: true }), 'UTC');
  await page.getByLabel(`Overlap of ${made.id}`, { exact: true }).selectOption('allow');
  await page.getByRole('button', { name: `Save ${made.id}`, exact: true }).click();
  await page.locator(`${row} code`).filter({ hasText: hourly }).waitFor();
  await page.waitForSelector(`${message}.message-success`);
  const changed = (await listed()).find((s) => s.id === made.id);
  check(changed.expression === hourly && changed.timezone === 'UTC' && changed.overlap === 'allow' && changed.state === 'paused',
    `the schedule after the change: ${JSON.stringify(changed)}`);

  if (backfill) {
    // Three whole hours back (each hour mark inside the range once, the range wholly past).
    const hour = 3600 * 1000;
    const mark = Math.floor(Date.now() / hour) * hour - hour;
    const local = (ms) => new Date(ms).toISOString().slice(0, 16); // the form's fields are UTC
    const slots = [mark - 2 * hour, mark - hour, mark].map((ms) => new Date(ms).toISOString().replace('.000Z', 'Z'));
    await page.getByText(`Change or backfill ${made.id}`, { exact: true }).click();
    await fillReady(page.getByLabel(`Backfill from (UTC) for ${made.id}`, { exact: true }), local(mark - 2 * hour - hour / 2));
    await fillReady(page.getByLabel(`Backfill to (UTC) for ${made.id}`, { exact: true }), local(mark + hour / 2));
    await page.getByRole('button', { name: `Backfill ${made.id}`, exact: true }).click();
    await page.locator(`${message}.message-success`).filter({ hasText: '3 run(s) started' }).waitFor();
    // The instances the backfill started, by the scheduled time in their input.
    const deadline = Date.now() + PATIENT;
    let scheduled = [];
    for (;;) {
      const page0 = await apiGet(`/instances?workflow_name=${name}&limit=50`);
      const ids = page0.items.map((i) => i.id);
      scheduled = [];
      for (const id of ids) {
        const detail = await apiGet(`/instances/${id}`);
        if (detail.input_data?.scheduled_at) scheduled.push(detail.input_data.scheduled_at);
      }
      if (scheduled.length >= 3 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500)); // poll pacing; the loop ends on the condition
    }
    check(JSON.stringify(scheduled.sort()) === JSON.stringify(slots), `runs backfilled at ${scheduled}, not ${slots}`);
  }

  await page.getByRole('button', { name: `Resume ${made.id}` }).click();
  await page.waitForSelector(`${row}[data-state="enabled"]`);
  check(await page.locator(`${row} .next-runs li`).count() === 3, 'the changed schedule\'s next runs are not listed');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: `Delete ${made.id}` }).click();
  await page.waitForSelector(row, { state: 'detached' });
  check(!(await listed()).some((s) => s.id === made.id), 'the API still has the deleted schedule');
}

// A workflow whose sources carry markup in titles and comments (they must show as text).
function historyDefinition(name) {
  return {
    name,
    description: 'Two revisions, a restore and a deactivation.',
    steps: [
      { id: 'record', type: 'machine', task_type: 'data.set', config: { values: { note: 'first' } },
        title: 'Record <script>window.__pwned=3</script>' },
      { id: 'review', type: 'human', depends_on: ['record'], title: '<img src=x onerror="window.__pwned=4">' },
    ],
  };
}
const historyYaml = (name) => `# Second revision <img src=x onerror="window.__pwned=5"> & <b>bold</b>
name: ${name}
description: Two revisions, a restore and a deactivation.
steps:
  - id: record
    type: machine
    task_type: data.set
    config:
      values:
        note: second   # <script>window.__pwned=6</script>
    title: Record <script>window.__pwned=3</script>
  - id: review
    type: human
    depends_on: [record]
    title: '<img src=x onerror="window.__pwned=4">'
`;

// The credentials page at `stage` ('' for none): add two from the form, page through them one at a time by
// the links the page builds, rotate one, refuse a short value, delete both. A value typed in is never
// in the page afterwards: not in its markup, not in any field.
async function credentialsFlow(run, tag, stage) {
  const page = await run.context.newPage();
  page.on('dialog', (dialog) => dialog.accept());
  const names = [`${tag}_one`, `${tag}_two`];
  const values = [`${tag}-first-value-7Qz`, `${tag}-second-value-9Kp`];
  const rotatedValue = `${tag}-rotated-value-3Wm`;
  const leaked = async () => {
    const html = await page.content();
    const fields = await page.$$eval('input', (inputs) => inputs.map((input) => input.value));
    return [...values, rotatedValue].filter((v) => html.includes(v) || fields.some((f) => f.includes(v)));
  };
  await page.goto(`${base}${stage}/ui#/workflows`);
  await page.getByRole('link', { name: 'Credentials', exact: true }).click();
  await page.waitForSelector('#add-credential');
  check(await page.getAttribute('a[data-nav="credentials"]', 'aria-current') === 'page', 'the nav link is not current');
  check((await unlabelled(page, '#main')).length === 0, `unlabelled controls: ${await unlabelled(page, '#main')}`);
  for (const [index, name] of names.entries()) {
    await fillReady(page.getByLabel('Name', { exact: true }), name);
    await fillReady(page.getByLabel('Description', { exact: true }), `<b>${name}</b> for the tests`);
    await fillReady(page.getByLabel('Value', { exact: true }), values[index]);
    await page.getByRole('button', { name: 'Add credential' }).click();
    await page.waitForSelector(`#credentials tr[data-credential="${name}"]`);
    const description = await page.textContent(`#credentials tr[data-credential="${name}"] td`);
    check(description === `<b>${name}</b> for the tests`, `the description is shown as text: ${description}`);
    check((await leaked()).length === 0, `a value is on the page after saving: ${await leaked()}`);
  }
  if (!stage) await run.shot(page, 'credentials');

  // One a page: follow "Next page" until the end, every link built by the page.
  await page.goto(`${base}${stage}/ui#/credentials?limit=1`);
  const seen = [];
  for (let pages = 0; pages < 50; pages += 1) {
    await page.waitForSelector('#credentials, #no-credentials');
    seen.push(...await page.$$eval('#credentials tbody tr', (trs) => trs.map((tr) => tr.dataset.credential)));
    const next = page.locator('#credentials-next');
    if (!(await next.count())) break;
    const href = await next.getAttribute('href');
    check(href.startsWith('#/credentials?') && href.includes('limit=1'), `the next link: ${href}`);
    const before = page.url();
    await next.click();
    await page.waitForFunction((url) => location.href !== url, before);
    await page.waitForSelector('#credentials-first');
  }
  check(names.every((n) => seen.includes(n)) && new Set(seen).size === seen.length, `paged through: ${seen}`);
  if (await page.locator('#credentials-first').count()) {
    await page.click('#credentials-first');
    await page.waitForFunction(() => location.hash === '#/credentials?limit=1');
    await page.waitForSelector('#credentials tbody tr');
  }

  // Rotate the first; a value too short is refused with the API's message.
  await page.goto(`${base}${stage}/ui#/credentials`);
  await page.waitForSelector(`#credentials tr[data-credential="${names[0]}"]`);
  await fillReady(page.getByLabel(`New value for ${names[0]}`), rotatedValue);
  await page.getByRole('button', { name: `Rotate ${names[0]}` }).click();
  await page.waitForSelector('#credentials-message.message-success');
  const metadata = await apiGet(`/credentials/${names[0]}`);
  check(metadata.rotated_at, `not rotated: ${JSON.stringify(metadata)}`);
  check((await leaked()).length === 0, `a value is on the page after rotating: ${await leaked()}`);
  await fillReady(page.getByLabel(`New value for ${names[1]}`), 'short');
  await page.getByRole('button', { name: `Rotate ${names[1]}` }).click();
  await page.waitForSelector('#credentials-message.message-error[role="alert"]');

  // Delete both (after the confirmation); the API no longer has them.
  for (const name of names) {
    await page.getByRole('button', { name: `Delete ${name}` }).click();
    await page.waitForSelector(`#credentials tr[data-credential="${name}"]`, { state: 'detached' });
    const gone = await fetch(`${base}/workflows/credentials/${name}`);
    check(gone.status === 404, `${name} after deleting: ${gone.status}`);
  }
  return { seen: seen.filter((n) => names.includes(n)), rotated: Boolean(metadata.rotated_at) };
}

// The key-value page at `stage`: a namespace's keys by prefix, two a page by the links the page builds;
// a value shown as JSON text; an edit saved over the version read; one over a version changed meanwhile
// refused (412) and said, nothing written, then reloaded; delete.
async function kvFlow(run, namespace, stage) {
  const page = await run.context.newPage();
  page.on('dialog', (dialog) => dialog.accept());
  const entry = (key) => `${base}/workflows/kv/${namespace}/${key}`;
  const put = (key, value) => fetch(entry(key), { method: 'PUT', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ value }) });
  const keys = ['order:1', 'order:2', 'order:3'];
  for (const [index, key] of keys.entries()) {
    const made = await put(key, { n: index + 1, note: '<img src=x onerror="window.__pwned=7">' });
    check(made.status === 201, `seeding ${key} answered ${made.status}`);
  }
  check((await put('other', 1)).status === 201, 'seeding other');

  await page.goto(`${base}${stage}/ui#/workflows`);
  // The workflows page drawn first: a view still loading when the link is followed can draw over the next.
  await page.waitForSelector('#main:not([aria-busy]) h1');
  await page.getByRole('link', { name: 'Key-value store', exact: true }).click();
  await page.waitForSelector('#kv-picker');
  check((await unlabelled(page, '#main')).length === 0, `unlabelled controls: ${await unlabelled(page, '#main')}`);
  await fillReady(page.getByLabel('Namespace', { exact: true }), namespace);
  await fillReady(page.getByLabel('Key prefix', { exact: true }), 'order:');
  await page.getByRole('button', { name: 'List keys' }).click();
  await page.waitForSelector('#kv-keys tbody tr[data-key="order:3"]');
  const listed = () => page.$$eval('#kv-keys tbody tr', (trs) => trs.map((tr) => tr.dataset.key));
  check(JSON.stringify(await listed()) === JSON.stringify(keys), `keys by prefix: ${await listed()}`);

  // Two a page: the next link, then the first.
  await page.goto(`${base}${stage}/ui#/kv?namespace=${namespace}&prefix=order%3A&limit=2`);
  await page.waitForSelector('#kv-next');
  const first = await listed();
  await page.click('#kv-next');
  await page.waitForSelector('#kv-first');
  const second = await listed();
  check(JSON.stringify([...first, ...second]) === JSON.stringify(keys), `paged: ${first} then ${second}`);
  await page.click('#kv-first');
  await page.waitForFunction(() => !location.hash.includes('cursor='));
  await page.waitForSelector('#kv-keys tbody tr[data-key="order:1"]');

  // View order:1: its value as JSON text, its markup not an element.
  await page.getByRole('link', { name: 'order:1', exact: true }).click();
  await page.waitForSelector('#kv-entry[data-version="1"]');
  const shown = await page.textContent('#kv-value pre');
  check(shown === JSON.stringify({ n: 1, note: '<img src=x onerror="window.__pwned=7">' }, null, 2), `the value shown: ${shown}`);
  check(await page.locator('#kv-value img').count() === 0, 'the value became markup');

  // Saved over version 1: version 2, as the API has it.
  await fillReady(page.getByLabel('Edit the value of order:1 (JSON)'), '{"n": 10}');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.waitForSelector('#kv-entry[data-version="2"]');
  let stored = await (await fetch(entry('order:1'))).json();
  check(stored.version === 2 && stored.value.n === 10, `after saving: ${JSON.stringify(stored)}`);
  // Not JSON: said, nothing sent.
  await fillReady(page.getByLabel('Edit the value of order:1 (JSON)'), '{n: 11');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.waitForSelector('#kv-message.message-error');
  // Changed meanwhile (version 3 by another writer): the page's save over version 2 is refused.
  check((await put('order:1', { n: 'theirs' })).status === 200, 'the other write');
  await fillReady(page.getByLabel('Edit the value of order:1 (JSON)'), '{"n": "mine"}');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.locator('#kv-message[role="alert"]').filter({ hasText: 'changed meanwhile' }).waitFor();
  stored = await (await fetch(entry('order:1'))).json();
  check(stored.version === 3 && stored.value.n === 'theirs', `the refused save wrote: ${JSON.stringify(stored)}`);
  await page.click('#kv-reload');
  await page.waitForSelector('#kv-entry[data-version="3"]');
  check((await page.textContent('#kv-value pre')).includes('theirs'), 'the reload shows the other write');

  // A time to live set from the form: the API has the entry expiring about then (at version 4); a blank
  // one saves it without expiry (version 5).
  await fillReady(page.getByLabel('Expires after (seconds) for order:1', { exact: true }), '3600');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.waitForSelector('#kv-entry[data-version="4"]');
  stored = await (await fetch(entry('order:1'))).json();
  const left = (Date.parse(stored.expires_at) - Date.now()) / 1000;
  check(stored.version === 4 && left > 3000 && left <= 3601, `after setting a TTL: ${JSON.stringify(stored)}`);
  const shownTtl = Number(await page.getByLabel('Expires after (seconds) for order:1', { exact: true }).inputValue());
  check(shownTtl > 3000 && shownTtl <= 3601, `the time to live left, as the form shows it: ${shownTtl}`);
  await fillReady(page.getByLabel('Expires after (seconds) for order:1', { exact: true }), '');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.waitForSelector('#kv-entry[data-version="5"]');
  stored = await (await fetch(entry('order:1'))).json();
  check(stored.version === 5 && !stored.expires_at, `after clearing the TTL: ${JSON.stringify(stored)}`);
  // A time to live the API refuses is said with its message.
  await fillReady(page.getByLabel('Expires after (seconds) for order:1', { exact: true }), '0');
  await page.getByRole('button', { name: 'Save order:1', exact: true }).click();
  await page.locator('#kv-message[role="alert"]').filter({ hasText: 'ttl_seconds' }).waitFor();
  check((await (await fetch(entry('order:1'))).json()).version === 5, 'a refused TTL wrote');

  // Delete: back to the list, without it (the list drawn again); the API has it no more.
  await page.getByRole('button', { name: 'Delete order:1' }).click();
  await page.waitForFunction(() => !location.hash.includes('key='));
  await page.waitForSelector('#kv-keys tbody tr[data-key="order:1"]', { state: 'detached' });
  await page.waitForSelector('#kv-keys tbody tr[data-key="order:2"]');
  check((await fetch(entry('order:1'))).status === 404, 'the API still has order:1');

  // A new key from the form (with a time to live) opens it; the same key again is refused, not overwritten.
  await fillReady(page.getByLabel('New key', { exact: true }), 'order:9');
  await fillReady(page.getByLabel('Value of the new key (JSON)', { exact: true }), '{"n": 9}');
  await fillReady(page.getByLabel('Expires after (seconds)', { exact: true }), '600');
  await page.getByRole('button', { name: 'Add key', exact: true }).click();
  await page.waitForSelector('#kv-entry[data-key="order:9"][data-version="1"]');
  stored = await (await fetch(entry('order:9'))).json();
  check(stored.value.n === 9 && stored.expires_at, `the added key: ${JSON.stringify(stored)}`);
  await fillReady(page.getByLabel('New key', { exact: true }), 'order:9');
  await fillReady(page.getByLabel('Value of the new key (JSON)', { exact: true }), '{"n": "again"}');
  await page.getByRole('button', { name: 'Add key', exact: true }).click();
  await page.locator('#kv-new-message[role="alert"]').filter({ hasText: 'already in' }).waitFor();
  check((await (await fetch(entry('order:9'))).json()).value.n === 9, 'adding an existing key overwrote it');
  if (!stage) await run.shot(page, 'kv');
  return { first, second };
}

// Puts the service behind `stage` with its API at `apiPrefix`, as API Gateway would: the app sees the
// stage in the request's path and writes it into the page (chalicelib/api/ui.py `roots`), which the
// local server cannot, so the page's two base paths are written here the same way. Returns the paths
// asked for outside the stage (refused), which a page that builds its URLs right never asks for.
async function underStage(context, stage, apiPrefix) {
  const strays = [];
  const origin = new URL(base).origin;
  await context.route((url) => url.origin === origin, async (route) => {
    const url = new URL(route.request().url());
    if (!url.pathname.startsWith(`${stage}/`)) {
      strays.push(url.pathname);
      return route.abort();
    }
    let rest = url.pathname.slice(stage.length);
    if (rest.startsWith(`${apiPrefix}/`)) rest = `/workflows${rest.slice(apiPrefix.length)}`;
    else if (!rest.startsWith('/ui')) {
      strays.push(url.pathname);
      return route.abort();
    }
    let response;
    try {
      response = await route.fetch({ url: `${base}${rest}${url.search}` });
    } catch (error) {
      // A request still in flight when the scenario closes its context (a page's refresh): nobody waits for it.
      if (/disposed|closed/i.test(String(error?.message))) return undefined;
      throw error;
    }
    try {
      if (rest !== '/ui' && rest !== '/ui/') return await route.fulfill({ response });
      const page = (await response.text())
        .replaceAll('"/ui', `"${stage}/ui`).replace('content="/workflows"', `content="${stage}${apiPrefix}"`);
      return await route.fulfill({ response, body: page });
    } catch (error) {
      // The same for an answer that came back after its context closed: its fulfilment has no page left.
      if (/disposed|closed/i.test(String(error?.message))) return undefined;
      throw error;
    }
  });
  return strays;
}

// The source shown for revision `number`: its text, the kinds of token highlighted, and proof that
// nothing in it became an element.
async function sourceShown(page, number, language) {
  await page.waitForSelector(`#revision-source[data-number="${number}"] code[data-language="${language}"]`);
  const shown = await page.$eval('#source-code', (pre) => ({
    text: pre.textContent,
    kinds: [...new Set([...pre.querySelectorAll('span')].map((s) => s.className))].sort(),
    elements: [...pre.querySelectorAll('*')].filter((e) => !['CODE', 'SPAN'].includes(e.tagName)).map((e) => e.tagName),
    pwned: window.__pwned ?? null,
  }));
  check(shown.elements.length === 0 && shown.pwned === null, `markup in the source became elements: ${JSON.stringify(shown)}`);
  check(shown.kinds.includes('tok-key') && shown.kinds.includes('tok-string'), `highlighting: ${shown.kinds}`);
  if (language === 'yaml') check(shown.kinds.includes('tok-comment'), `YAML comments highlighted: ${shown.kinds}`);
  return shown;
}

function countStates(nodes) {
  const counts = {};
  for (const node of nodes) counts[node.state] = (counts[node.state] || 0) + 1;
  return counts;
}

// A chain of util.log steps (each writes a `log` event) with timers between them: at the tests' time
// scale (x0.01) about four seconds of events, across several of the stream service's one-second streams.
const PULSE = {
  name: 'event_source_pulse',
  steps: [1, 2, 3, 4, 5, 6].flatMap((n) => [
    { id: `say_${n}`, type: 'machine', task_type: 'util.log', config: { message: `pulse ${n}` },
      ...(n > 1 ? { depends_on: [`pause_${n - 1}`] } : {}) },
    ...(n < 6 ? [{ id: `pause_${n}`, type: 'timer', seconds: 60, depends_on: [`say_${n}`] }] : []),
  ]),
};
const STREAM_TYPES = ['instance.started', 'instance.ended', 'step.started', 'step.succeeded', 'step.failed',
  'step.retried', 'log'];

// The timeline scenario's runs: one that waits for an event between its steps, one whose step fails
// twice (a retry, then the end of its attempts).
const HOSTILE_NOTE = '<img src=x onerror="window.__pwned=3"> </pre><script>window.__pwned=4</script>';
const TIMELINE = {
  name: 'timeline_ui',
  steps: [
    { id: 'prepare', type: 'machine', task_type: 'data.set', config: { values: { stage: 'prepared' } } },
    { id: 'bulk', type: 'machine', task_type: 'data.set', config: { values: { blob: 'x'.repeat(6000) } }, depends_on: ['prepare'] },
    { id: 'paid', type: 'receive', event_type: 'order.paid', correlation_key: '{{ order }}', depends_on: ['bulk'] },
    { id: 'finish', type: 'machine', task_type: 'data.set', config: { values: { done: true } }, depends_on: ['paid'] },
  ],
};
const TIMELINE_FAILS = {
  name: 'timeline_fails',
  steps: [
    { id: 'load', type: 'machine', task_type: 'data.set', config: { values: { loaded: true } } },
    { id: 'check', type: 'machine', task_type: 'data.assert', depends_on: ['load'],
      retry: { max_attempts: 2, interval_seconds: 1 },
      config: { condition: 'amount >= 10', error: 'Check.TooSmall', message: 'amount {{ amount }} is below 10' } },
  ],
};

const scenarios = {
  // A browser EventSource follows a run on the service that ends every followed stream after a second
  // (as API Gateway ends every response): it reconnects by itself with Last-Event-ID each time, and what
  // it received is the instance's whole log, each event once, in order.
  async event_source(run) {
    const streamBase = options.streamBase;
    check(streamBase, 'the stream service is not running');
    const registered = await fetch(`${streamBase}/workflows/definitions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(PULSE) });
    check([200, 201].includes(registered.status), `registering answered ${registered.status}`);
    const page = await run.context.newPage();
    await page.goto(`${streamBase}/ui`);  // the API's origin: the page may open the stream
    const started = await fetch(`${streamBase}/workflows/instances`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ definition_name: PULSE.name, input_data: {} }) });
    check(started.status === 201, `starting answered ${started.status}`);
    const instanceId = (await started.json()).id;
    await page.evaluate(({ id, types }) => {
      window.__stream = { seqs: [], types: [], opens: 0, done: false };
      const source = new EventSource(`/workflows/instances/${id}/events?follow=true`);
      source.onopen = () => { window.__stream.opens += 1; };
      for (const type of types) {
        source.addEventListener(type, (message) => {
          window.__stream.seqs.push(message.lastEventId);
          window.__stream.types.push(type);
          if (type === 'instance.ended') { window.__stream.done = true; source.close(); }
        });
      }
    }, { id: instanceId, types: STREAM_TYPES });
    await page.waitForFunction(() => window.__stream.done, null, { timeout: 60000 });
    const got = await page.evaluate(() => window.__stream);
    const response = await fetch(`${streamBase}/workflows/instances/${instanceId}/events?limit=1000`);
    const log = (await response.text()).trim().split('\n').map((line) => JSON.parse(line));
    const unknown = log.filter((e) => !STREAM_TYPES.includes(e.type)).map((e) => e.type);
    check(unknown.length === 0, `events of types the page does not listen to: ${unknown}`);
    check(JSON.stringify(got.seqs) === JSON.stringify(log.map((e) => e.seq)),
      `received ${got.seqs.length} events (${got.types.join(' ')}), the log has ${log.length}`);
    check(new Set(got.seqs).size === got.seqs.length, 'an event arrived twice');

    // The instance page follows a run's log the same way (fetch, NDJSON, across the same cuts): its event
    // log lists every event once, and the page shows the run completed once the log has ended.
    const again = await fetch(`${streamBase}/workflows/instances`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ definition_name: PULSE.name, input_data: {} }) });
    const second = (await again.json()).id;
    await page.goto(`${streamBase}/ui#/instances/${second}`);
    await page.waitForSelector('#event-log li[data-type="log"]', { timeout: 60000 });
    await page.waitForSelector('#event-log[data-ended="true"]', { timeout: 60000 });
    await waitForInstance(page, 'completed');
    const listed = await page.$$eval('#event-log li', (items) => items.map((li) => li.dataset.seq));
    const secondLog = (await (await fetch(`${streamBase}/workflows/instances/${second}/events?limit=1000`)).text())
      .trim().split('\n').map((line) => JSON.parse(line).seq);
    check(JSON.stringify(listed) === JSON.stringify(secondLog), `the page listed ${listed.length} events, the log has ${secondLog.length}`);
    return { events: got.seqs.length, opens: got.opens, logs: got.types.filter((t) => t === 'log').length,
      pageEvents: listed.length };
  },

  // The operations page: a run whose step fails shows under its workflow and its failing step, and the
  // audit log lists the latest changes; each table is waited for as it redraws.
  async operations(run) {
    const { context } = run;
    const flow = { name: 'ops_failing', steps: [
      { id: 'prepare', type: 'machine', task_type: 'data.set', config: { values: { ok: false } } },
      { id: 'check', type: 'machine', task_type: 'data.assert', depends_on: ['prepare'], config: { condition: 'ok == true' } }] };
    // In a namespace: the graphs scenario compares the workflows it drew with those listed outside any.
    for (const [pathname, body] of [['/definitions?namespace=ops', flow],
      ['/instances?namespace=ops', { definition_name: 'ops_failing', input_data: {} }]]) {
      const response = await fetch(`${base}/workflows${pathname}`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      check(response.status === 201 || response.status === 200, `POST ${pathname} answered ${response.status}`);
    }
    const page = await context.newPage();
    await page.goto(`${base}/ui#/operations`);
    await page.waitForSelector('#operations');
    await page.waitForFunction(() => document.querySelector('#ops-instances tr[data-workflow="ops_failing"]')?.dataset.failed === '1',
      null, { timeout: 60000 });
    // Other scenarios fail data.assert steps too (with their own errors): ours is the row of its error.
    const ours = '#ops-failures tr[data-task-type="data.assert"][data-error="Stepflow.AssertionFailed"]';
    await page.waitForFunction((selector) => !!document.querySelector(selector), ours, { timeout: 30000 });
    // Other scenarios change things meanwhile: the latest entries are theirs or ours, two at least.
    await page.waitForFunction(() => document.querySelectorAll('#ops-audit tbody tr[data-operation]').length >= 2,
      null, { timeout: 30000 });
    const missing = await unlabelled(page, '#operations');
    check(missing.length === 0, `controls without a label: ${missing.join(' ')}`);
    check(await page.getAttribute('a[data-nav="operations"]', 'aria-current') === 'page', 'the nav marks the page');
    await run.shot(page, 'operations');
    const error = await page.$eval(ours, (tr) => tr.dataset.error);
    return { failed: 1, error };
  },
  // Start order_fulfilment from its start form (after an empty submission shows the field errors)
  // and watch the instance complete with every step it ran drawn green.
  async start_order(run) {
    const { context } = run;
    const page = await context.newPage();
    await page.goto(`${base}/ui`);
    await page.waitForSelector('#workflows');
    await run.shot(page, 'workflows');
    await page.getByRole('link', { name: 'order_fulfilment', exact: true }).click();
    await waitForGraph(page, '#definition-graph');

    const missing = await unlabelled(page, '#start-form');
    check(missing.length === 0, `controls without a label: ${missing.join(' ')}`);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForSelector('#start-form .field-error:not([hidden])');
    const errors = await page.$$eval('#start-form .has-error', (els) => els.map((e) => e.dataset.path || e.id));
    check(errors.length >= 3, `expected the three required fields to be flagged, got ${JSON.stringify(errors)}`);
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-invalid'));
    check(focused === 'true', 'focus should move to the first field in error');
    await run.shot(page, 'definition-errors');

    await fillReady(page.getByLabel('order_id'), 'A-1001');
    await fillReady(page.getByLabel('amount'), '120');
    await fillReady(page.getByLabel('name'), 'Ada Lovelace');
    await run.shot(page, 'definition');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/#\/instances\/[0-9a-f-]{36}$/);
    const instanceId = decodeURIComponent(page.url().split('#/instances/')[1]);
    await waitForInstance(page, 'completed');

    const nodes = await graphNodes(page, '#instance-graph');
    const counts = countStates(nodes);
    check(nodes.length === 8, `expected 8 nodes, saw ${nodes.length}`);
    check(counts.completed === 7 && counts.not_reached === 1, `expected 7 completed and 1 not reached: ${JSON.stringify(counts)}`);
    for (const node of nodes.filter((n) => n.state === 'completed')) {
      check(node.fill === FILLS.completed, `completed node ${node.id} is filled ${node.fill}`);
    }
    const skipped = nodes.find((n) => n.state === 'not_reached');
    check(skipped.label === 'Flag for review', `the branch not taken should be 'Flag for review', not ${skipped.label}`);
    // The page polls once more after the instance stops, as its last events can trail its status.
    await page.waitForFunction(() => {
      const statuses = [...document.querySelectorAll('#history tbody tr')].map((tr) => tr.dataset.status);
      return statuses.length === 7 && statuses.every((s) => s === 'succeeded');
    }, null, { timeout: 10000 }).catch(() => {});
    const rows = await page.$$eval('#history tbody tr', (trs) => trs.map((tr) => [tr.dataset.step, tr.dataset.status]));
    check(rows.length === 7 && rows.every(([, s]) => s === 'succeeded'), `step history: ${JSON.stringify(rows)}`);
    await run.shot(page, 'instance');

    await page.getByRole('link', { name: 'Instances', exact: true }).first().click();
    await page.waitForSelector(`#instances tr[data-instance="${instanceId}"][data-status="completed"]`);
    await page.selectOption('#filter-status', 'completed');
    await page.waitForSelector(`#instances tr[data-instance="${instanceId}"]`);
    check(page.url().includes('status=completed'), 'the filter should be kept in the address');
    await run.shot(page, 'instances');
    return { instanceId, counts };
  },

  // Each named workflow's definition graph drawn by the real Mermaid: no parse error, one node per
  // step, every label shown exactly as written, nothing injected into the page.
  async graphs(run) {
    const { context } = run;
    const page = await context.newPage();
    const results = {};
    const names = (await apiGet('/definitions')).map((d) => d.name).sort();
    for (const name of names) {
      const graph = await apiGet(`/definitions/${encodeURIComponent(name)}/graph`);
      await page.goto(`${base}/ui#/workflows/${encodeURIComponent(name)}`);
      // Only the hash changes, so the previous workflow's page is still there until the new one replaces it.
      await page.waitForFunction((wanted) => document.querySelector('main h1')?.textContent === wanted, name);
      await waitForGraph(page, '#definition-graph');
      const nodes = await graphNodes(page, '#definition-graph');
      check(nodes.length === graph.nodes.length, `${name}: ${nodes.length} nodes drawn for ${graph.nodes.length} steps`);
      const drawn = new Map(nodes.map((n) => [n.id.replace(/^.*flowchart-(.+)-\d+$/, '$1'), n]));
      for (const node of graph.nodes) {
        const label = drawn.get(node.mermaid_id)?.label;
        const shape = drawn.get(node.mermaid_id)?.shape;
        check(!SHAPES[node.type] || shape === SHAPES[node.type], `${name}: ${node.type} step ${node.id} drawn as ${shape}`);
        const expected = node.label.replace(/\s+/g, ' ').trim();
        check(label === expected, `${name}: step ${node.id} shows ${JSON.stringify(label)}, not ${JSON.stringify(expected)}`);
      }
      const edgeLabels = await page.$$eval('#definition-graph svg .edgeLabel', (els) => els.map((e) => e.textContent.replace(/\s+/g, ' ').trim()).filter(Boolean));
      for (const edge of graph.edges.filter((e) => e.condition)) {
        const expected = edge.condition.replace(/\s+/g, ' ').trim();
        check(edgeLabels.includes(expected), `${name}: condition ${JSON.stringify(expected)} not shown; saw ${JSON.stringify(edgeLabels)}`);
      }
      const injected = await page.evaluate(() => ({
        pwned: window.__pwned ?? null,
        scripts: document.querySelectorAll('#definition-graph script, #definition-graph iframe, #definition-graph [onerror], #definition-graph [onclick]').length,
        title: document.title,
      }));
      check(injected.pwned === null && injected.scripts === 0, `${name}: markup got through: ${JSON.stringify(injected)}`);
      results[name] = nodes.length;
      if (options.shotNames?.[name]) await run.shot(page, options.shotNames[name]);
    }
    return results;
  },

  // A quorum of two: bob has approved (through the API); the task page shows "1 of 2" and bob's decision;
  // carol approves through the form and the step completes. Then a one-click link: its page changes
  // nothing until its button is pressed, and decides once.
  async quorum(run) {
    const { context } = run;
    const post = async (path, body) => {
      const response = await fetch(`${base}/workflows${path}`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return { status: response.status, body: await response.json() };
    };
    const form = { type: 'object', required: ['approved'],
      properties: { approved: { type: 'boolean', title: 'Approved' }, comments: { type: 'string', title: 'Comments' } } };
    const definition = { name: 'ui_quorum', steps: [
      { id: 'board', type: 'human', title: 'Board approval', form_schema: form, assignee: 'carol',
        approvals: { required: 2, of: 'board', out_of: 3 }, distinct_from: ['requester'] }] };
    check([200, 201].includes((await post('/definitions', definition)).status), 'the quorum definition registers');
    const taskOf = async (instanceId) => {
      for (let i = 0; i < 300; i += 1) {
        const page = await (await fetch(`${base}/workflows/tasks?instance_id=${instanceId}`)).json();
        if (page.items.length) return page.items[0];
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`no task for ${instanceId}`);
    };
    const first = await post('/instances', { definition_name: 'ui_quorum', input_data: { requester: 'alice' } });
    const task = await taskOf(first.body.id);
    check((await post(`/approvals/${task.id}/approve`, { decided_by: 'bob', comment: 'yes' })).status === 200, 'bob approves');

    const page = await context.newPage();
    await page.goto(`${base}/ui#/inbox/${task.id}`);
    await page.locator('#quorum-progress').filter({ hasText: '1 of 2 approvals' }).waitFor();
    await page.locator('#task-decisions li[data-by="bob"]').filter({ hasText: 'approved' }).waitFor();
    await page.locator('#task-four-eyes').filter({ hasText: 'alice' }).waitFor();
    await page.waitForSelector('#complete-form');
    await run.shot(page, 'task-quorum');
    await page.getByRole('radio', { name: 'Yes' }).check();
    await page.getByLabel('Completed by').fill('carol');
    await page.getByRole('button', { name: 'Complete task' }).click();
    await page.waitForSelector('#task-outcome.message-success');
    await page.reload();
    await page.locator('#quorum-progress').filter({ hasText: '2 of 2 approvals' }).waitFor();
    await page.locator('#task-status').filter({ hasText: 'completed' }).waitFor();

    const second = await post('/instances', { definition_name: 'ui_quorum', input_data: { requester: 'alice' } });
    const linked = await taskOf(second.body.id);
    const minted = await post(`/tasks/${linked.id}/links`, { decider: 'dana' });
    check(minted.status === 201, `links are minted: ${JSON.stringify(minted.body)}`);
    await page.goto(`${base}${minted.body.links.approve}`);
    await page.getByRole('button', { name: 'Approve' }).waitFor();
    await run.shot(page, 'decide-link');
    const untouched = await (await fetch(`${base}/workflows/tasks/${linked.id}`)).json();
    check(untouched.decisions === null, `the confirmation page decided something: ${JSON.stringify(untouched.decisions)}`);
    await page.getByLabel('Comment (optional)').fill('From my phone');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('h1').filter({ hasText: 'Approved' }).waitFor();
    await page.goto(`${base}${minted.body.links.approve}`);
    await page.locator('#message').filter({ hasText: 'already used' }).waitFor();
    const decided = await (await fetch(`${base}/workflows/tasks/${linked.id}`)).json();
    return { first: task.id, decisions: decided.decisions.map((d) => [d.by, d.approved, d.via || null, d.comment || null]) };
  },

  // Expense approval through the inbox: start it, find the task under "Mine", submit the form
  // without a decision (an inline error), approve, and watch the instance complete all green.
  // A second tab that still shows the form then gets "already completed".
  async inbox(run) {
    const { context } = run;
    const page = await context.newPage();
    await page.goto(`${base}/ui#/workflows/expense_approval`);
    await fillReady(page.locator('#identity-user'), 'bob');
    await fillReady(page.locator('#identity-groups'), 'managers');
    await page.getByRole('button', { name: 'Save' }).click();
    await waitForGraph(page, '#definition-graph');
    await fillReady(page.getByLabel('requester'), 'alice');
    await fillReady(page.getByLabel('manager'), 'bob');
    await fillReady(page.getByLabel('amount'), '250');
    await fillReady(page.getByLabel('description'), 'Conference train tickets');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/#\/instances\/[0-9a-f-]{36}$/);
    const instanceId = decodeURIComponent(page.url().split('#/instances/')[1]);
    await waitForInstance(page, 'waiting');
    const waiting = await graphNodes(page, '#instance-graph');
    const waitingNode = waiting.find((n) => n.state === 'waiting');
    check(waitingNode && waitingNode.label === 'Manager Approval', `expected Manager Approval waiting: ${JSON.stringify(waiting)}`);
    await page.waitForSelector('#instance-tasks a');
    await run.shot(page, 'instance-waiting');

    await page.getByRole('link', { name: 'Task inbox' }).click();
    await page.waitForSelector(`#tasks tr[data-step="manager_approval"]`);
    await run.shot(page, 'inbox');
    // The search narrows the list to what it matches (title or workflow), and "/" reaches it from the page.
    await page.locator('main h1').click();
    await page.keyboard.press('/');
    await page.waitForFunction(() => document.activeElement?.id === 'inbox-search');
    await page.keyboard.type('no such task');
    await page.waitForSelector('#inbox-empty');
    await page.fill('#inbox-search', 'expense_app');
    await page.waitForSelector(`#tasks tr[data-step="manager_approval"]`);
    const taskLink = page.locator('#tasks tr[data-step="manager_approval"] th a');
    const taskHref = await taskLink.getAttribute('href');
    const taskId = decodeURIComponent(taskHref.split('#/inbox/')[1]);
    await taskLink.click();
    await page.waitForSelector('#complete-form');
    // Beside the form: what the step declares its decider sees, and the instance's steps so far.
    await page.waitForSelector('#task-context dd[data-label="Amount"]');
    const shown = await page.$$eval('#task-context dd', (els) => Object.fromEntries(els.map((e) => [e.dataset.label, e.textContent])));
    check(shown.Amount === '250' && shown.Requester === 'alice' && shown.Description === 'Conference train tickets',
      `the task page shows ${JSON.stringify(shown)}`);
    await page.waitForSelector('#task-history-steps li');
    const ranSoFar = await page.$$eval('#task-history-steps li > span:first-child', (els) => els.map((e) => e.textContent));
    check(ranSoFar.includes('submit'), `the instance so far: ${JSON.stringify(ranSoFar)}`);
    await run.shot(page, 'task-context');

    const missing = await unlabelled(page, 'main');
    check(missing.length === 0, `controls without a label: ${missing.join(' ')}`);

    const other = await context.newPage(); // a second tab on the same task
    await other.goto(`${base}/ui${taskHref}`);
    await other.waitForSelector('#complete-form');

    await fillReady(page.getByLabel('Comments'), 'Fine by me');
    await page.getByRole('button', { name: 'Complete task' }).click();
    const error = page.locator('.field-boolean .field-error');
    await error.waitFor({ state: 'visible' });
    check((await error.textContent()).includes('required'), `the decision's error: ${await error.textContent()}`);
    const invalid = await page.getAttribute('.field-boolean input[value="true"]', 'aria-invalid');
    check(invalid === 'true', 'the radio buttons should be marked aria-invalid');
    await page.waitForSelector('#complete-message[role="alert"]');
    await run.shot(page, 'task-form-error');

    // Decided from the keyboard: Ctrl+Enter sends the form from the field that has the focus.
    await page.getByRole('radio', { name: 'Yes' }).check();
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#task-outcome.message-success');
    const outcomeFocused = await page.evaluate(() => document.activeElement?.id);
    check(outcomeFocused === 'task-outcome', `focus should move to the outcome, not ${outcomeFocused}`);

    await other.getByRole('radio', { name: 'No' }).check();
    await other.getByRole('button', { name: 'Complete task' }).click();
    const conflict = other.locator('#complete-message');
    await conflict.filter({ hasText: 'Already completed' }).waitFor();

    await page.click('#completed-instance');
    await waitForInstance(page, 'completed');
    const nodes = await graphNodes(page, '#instance-graph');
    const counts = countStates(nodes);
    check(counts.completed === 5 && counts.not_reached === 3 && nodes.length === 8,
      `expected 5 completed and 3 not reached: ${JSON.stringify(counts)}`);
    for (const node of nodes.filter((n) => n.state === 'completed')) {
      check(node.fill === FILLS.completed, `completed node ${node.id} is filled ${node.fill}`);
    }
    await run.shot(page, 'instance-approved');
    await other.close();
    // "My decisions" lists the task bob just decided.
    await page.goto(`${base}/ui#/inbox?view=decided`);
    await page.waitForSelector(`#tasks tr[data-task="${taskId}"]`);
    return { instanceId, counts, context: shown, decided: taskId };
  },

  // The instance page's actions: cancel a waiting instance (its open step turns grey), then retry it,
  // which opens the new instance.
  async actions(run) {
    const { context } = run;
    const page = await context.newPage();
    const response = await fetch(`${base}/workflows/instances`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ definition_name: 'expense_approval', input_data: { requester: 'carol', manager: 'dave', amount: 40 } }),
    });
    check(response.status === 201, `starting the instance answered ${response.status}`);
    const { id } = await response.json();
    await page.goto(`${base}/ui#/instances/${id}`);
    await waitForInstance(page, 'waiting');
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Cancel instance' }).click();
    await waitForInstance(page, 'canceled');
    // The open step turns grey once the page has read the closed task (a redraw of its own may follow
    // the one that showed the status).
    await page.waitForFunction(() => [...document.querySelectorAll('#instance-graph svg g.node')].some((node) =>
      node.classList.contains('canceled') && /Manager Approval/.test(node.textContent || '')));
    const nodes = await graphNodes(page, '#instance-graph');
    const step = nodes.find((n) => n.label === 'Manager Approval');
    check(step.state === 'canceled' && step.fill === 'rgb(211, 211, 211)', `the open step: ${JSON.stringify(step)}`);
    await run.shot(page, 'instance-canceled');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.waitForURL((url) => url.hash.startsWith('#/instances/') && !url.hash.endsWith(id));
    await waitForInstance(page, 'waiting');
    const retried = decodeURIComponent(page.url().split('#/instances/')[1]);
    return { canceled: id, retried };
  },

  // The instance page's "Send an event" form: a run waits at a receive step; data that is not a JSON
  // object is refused on the page; the event sent from the form completes the step with its data.
  // The instance page's timeline follows a run live: bars appear as the followed log brings the steps'
  // events (the page is not reloaded); a step's input and output are shown, escaped, a large one cut.
  async timeline(run) {
    for (const definition of [TIMELINE, TIMELINE_FAILS]) {
      const registered = await fetch(`${base}/workflows/definitions`, { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(definition) });
      check([200, 201].includes(registered.status), `registering ${definition.name} answered ${registered.status}`);
    }
    const start = async (name, input) => {
      const started = await fetch(`${base}/workflows/instances`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ definition_name: name, input_data: input }) });
      check(started.status === 201, `starting ${name} answered ${started.status}`);
      return (await started.json()).id;
    };
    const id = await start(TIMELINE.name, { order: 'T-1', note: HOSTILE_NOTE });
    const page = await run.context.newPage();
    await page.goto(`${base}/ui#/instances/${id}`);
    // The run waits at `paid`: the steps before it and the waiting one are on the timeline.
    await page.waitForSelector('#timeline [data-step="paid"] .timeline-bar');
    await page.waitForSelector('#timeline [data-step="bulk"][data-status="succeeded"]');
    const before = await page.$$eval('#timeline .timeline-row', (rows) => rows.map((r) => r.dataset.step));
    check(!before.includes('finish'), `finish is on the timeline before the event: ${before}`);
    await page.evaluate(() => { window.__sameDocument = true; });
    // The event lets the run go on; the timeline grows from the followed log, in the same document.
    const sent = await fetch(`${base}/workflows/instances/${id}/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'order.paid', step: 'paid', data: { amount: 9 } }) });
    check(sent.status === 202 || sent.status === 200, `sending the event answered ${sent.status}`);
    await page.waitForSelector('#timeline [data-step="finish"][data-status="succeeded"] .timeline-bar.outcome-succeeded');
    await page.waitForSelector('#timeline [data-step="paid"] .timeline-bar.outcome-succeeded');
    check(await page.evaluate(() => window.__sameDocument === true), 'the page was reloaded');
    const rows = await page.$$eval('#timeline .timeline-row', (all) => all.map((r) => r.dataset.step));
    check(JSON.stringify(rows.slice(0, 2)) === '["prepare","bulk"]' && rows.includes('finish'), `rows in start order: ${rows}`);
    // Bars share the axis: a later step's bar starts at or after the end of the first one's.
    const lefts = await page.$$eval('#timeline .timeline-bar', (bars) => bars.map((b) => parseFloat(b.style.left)));
    check(lefts[0] === 0 && lefts.every((l) => l >= 0 && l <= 100), `bar positions: ${lefts}`);
    await waitForInstance(page, 'completed');
    await page.waitForSelector('#event-log[data-ended="true"]', { state: 'attached' });
    // A step's input and output, as text.
    await page.click('#timeline [data-step="prepare"] .timeline-step');
    await page.waitForFunction(() => document.querySelector('#step-detail')?.dataset.step === 'prepare'
      && document.querySelector('#step-output')?.textContent.includes('"stage": "prepared"')
      && document.querySelector('#step-input')?.tagName === 'PRE');
    const prepare = await page.evaluate(() => ({
      input: document.querySelector('#step-input').textContent,
      markup: document.querySelectorAll('#step-detail img, #step-detail script').length,
      pwned: window.__pwned ?? null,
      query: location.hash,
    }));
    check(prepare.input.includes('"order": "T-1"') && prepare.input.includes('<img src=x'), `prepare's input: ${prepare.input}`);
    check(prepare.markup === 0 && prepare.pwned === null, `the input became markup: ${JSON.stringify(prepare)}`);
    check(prepare.query.includes('step=prepare'), `the chosen step is in the address: ${prepare.query}`);
    await run.shot(page, 'instance-timeline');
    await page.click('#timeline [data-step="bulk"] .timeline-step');
    await page.waitForFunction(() => document.querySelector('#step-detail')?.dataset.step === 'bulk'
      && document.querySelector('#step-output[data-truncated="true"]') && document.querySelector('#step-input')?.tagName === 'PRE');
    const note = await page.textContent('#step-detail .truncated-note');
    check(/Showing the first 4,000 of [\d,]+ characters/.test(note), `the note on a cut value: ${note}`);
    // The event's data is the receive step's output.
    await page.click('#timeline [data-step="paid"] .timeline-step');
    await page.waitForFunction(() => document.querySelector('#step-detail')?.dataset.step === 'paid');
    const paidOutput = await page.textContent('#step-output');
    check(paidOutput.includes('"amount": 9'), `paid's output: ${paidOutput.slice(0, 300)}`);

    // A failed instance leads with its failing step's clean error; a retried step shows each attempt.
    const failedId = await start(TIMELINE_FAILS.name, { amount: 5 });
    await page.goto(`${base}/ui#/instances/${failedId}`);
    await waitForInstance(page, 'failed');
    await page.waitForSelector('#event-log[data-ended="true"]', { state: 'attached' });
    await page.waitForSelector('#failure-lead:not([hidden]) #failure-error');
    const lead = await page.evaluate(() => {
      const box = document.querySelector('#failure-lead');
      const heading = document.querySelector('#main h1');
      const summary = document.querySelector('#instance-summary');
      return {
        text: box.textContent,
        afterHeading: !!(heading.compareDocumentPosition(box) & Node.DOCUMENT_POSITION_FOLLOWING),
        beforeSummary: !!(box.compareDocumentPosition(summary) & Node.DOCUMENT_POSITION_FOLLOWING),
        type: box.querySelector('.error-type')?.textContent,
      };
    });
    check(lead.afterHeading && lead.beforeSummary, `the error is not first: ${JSON.stringify(lead)}`);
    check(lead.type === 'Check.TooSmall' && lead.text.includes('amount 5 is below 10') && lead.text.includes('check'),
      `the lead: ${lead.text}`);
    check(!/Traceback|errorMessage|stackTrace|\{"/.test(lead.text), `not the clean error: ${lead.text}`);
    await page.waitForSelector('#timeline [data-step="check"][data-attempts="2"] .timeline-bar[data-attempt="2"][data-outcome="failed"]');
    const attempts = await page.$$eval('#timeline [data-step="check"] .timeline-bar', (bars) => bars.map((b) => ({
      attempt: b.dataset.attempt, outcome: b.dataset.outcome, label: b.textContent })));
    check(JSON.stringify(attempts.map((a) => [a.attempt, a.outcome])) === '[["1","retried"],["2","failed"]]',
      `the check step's attempts: ${JSON.stringify(attempts)}`);
    check(attempts[0].label.includes('Check.TooSmall'), `a failed attempt names its error: ${attempts[0].label}`);
    const facts = await page.textContent('#timeline [data-step="check"] .timeline-facts');
    check(facts.includes('2 attempts'), `the row's facts: ${facts}`);
    // The lead's link chooses the step: its detail shows the same clean error and the input it was given.
    await page.click('#failure-step');
    await page.waitForFunction(() => document.querySelector('#step-detail')?.dataset.step === 'check'
      && document.querySelector('#timeline [data-step="check"]')?.classList.contains('selected')
      && document.querySelector('#step-input')?.tagName === 'PRE');
    const detail = await page.evaluate(() => ({
      error: document.querySelector('#step-detail-error')?.textContent,
      input: document.querySelector('#step-input')?.textContent,
      focused: document.activeElement?.closest('[data-step]')?.dataset.step,
    }));
    check(detail.error === 'Check.TooSmall: amount 5 is below 10', `the step's error: ${detail.error}`);
    check(detail.input.includes('"amount": 5') && detail.input.includes('"loaded": true'), `check's input: ${detail.input}`);
    check(detail.focused === 'check', `focus went to the step: ${detail.focused}`);
    await run.shot(page, 'instance-failed-lead');
    for (const name of [TIMELINE.name, TIMELINE_FAILS.name]) {
      await fetch(`${base}/workflows/definitions/${name}`, { method: 'DELETE' });
    }
    return { instance: id, failed: failedId, rows, attempts: attempts.length };
  },

  // A view the router has left draws nothing over the page shown after it: the instance's answer is
  // held until the workflows page has drawn, then let through.
  async router_race(run) {
    const flow = { name: 'router_race', steps: [{ id: 'only', type: 'machine', task_type: 'data.set', config: { values: { a: 1 } } }] };
    const registered = await fetch(`${base}/workflows/definitions`, { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(flow) });
    check([200, 201].includes(registered.status), `registering ${flow.name} answered ${registered.status}`);
    const started = await fetch(`${base}/workflows/instances`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ definition_name: flow.name, input_data: {} }) });
    check(started.status === 201, `starting answered ${started.status}`);
    const { id } = await started.json();
    const page = await run.context.newPage();
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    let heldSeen;
    const seen = new Promise((resolve) => { heldSeen = resolve; });
    await page.route((url) => url.pathname === `/workflows/instances/${id}`, async (route) => {
      const response = await route.fetch();
      heldSeen();
      await held;
      await route.fulfill({ response });
    });
    await page.goto(`${base}/ui#/instances/${id}`);
    await seen;
    await page.evaluate(() => { location.hash = '#/workflows'; });
    await page.waitForSelector('#main:not([aria-busy]) h1');
    await page.waitForFunction(() => document.querySelector('#main h1')?.textContent === 'Workflows');
    // The left view gets its answer and draws: its next read (the graph) shows it has.
    const drawn = page.waitForRequest((request) => request.url().includes(`/instances/${id}/graph`));
    release();
    await drawn;
    const shown = await page.evaluate(() => ({
      headings: [...document.querySelectorAll('#main h1')].map((h) => h.textContent),
      instance: !!document.querySelector('#instance-summary'),
      views: document.querySelectorAll('#main > .view').length,
    }));
    check(JSON.stringify(shown.headings) === '["Workflows"]' && !shown.instance && shown.views === 1,
      `the left view drew over the page: ${JSON.stringify(shown)}`);
    await fetch(`${base}/workflows/definitions/${flow.name}`, { method: 'DELETE' });
    return shown;
  },

  async send_event(run) {
    const name = 'receive_ui';
    const registered = await fetch(`${base}/workflows/definitions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, steps: [{ id: 'paid', type: 'receive', event_type: 'order.paid', correlation_key: '{{ order }}' }] }) });
    check([200, 201].includes(registered.status), `registering ${name} answered ${registered.status}`);
    const started = await fetch(`${base}/workflows/instances`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ definition_name: name, input_data: { order: 'U-1' } }) });
    check(started.status === 201, `starting ${name} answered ${started.status}`);
    const { id } = await started.json();
    const page = await run.context.newPage();
    await page.goto(`${base}/ui#/instances/${id}`);
    // The form appears once the step's task is stored (the page polls while the instance runs).
    await page.waitForSelector('#send-event-form');
    check((await unlabelled(page, '#send-event')).length === 0, 'a control of the form has no label');
    await page.getByLabel('Receive step').selectOption({ label: 'paid (order.paid)' });
    await page.getByLabel('Data (JSON)').fill('[1, 2]');
    await page.getByRole('button', { name: 'Send event' }).click();
    await page.waitForFunction(() => /JSON object/.test(document.querySelector('#send-event-message')?.textContent || ''));
    await page.getByLabel('Data (JSON)').fill('{"amount": 9}');
    await run.shot(page, 'send-event');
    await page.getByRole('button', { name: 'Send event' }).click();
    await waitForInstance(page, 'completed');
    const instance = await apiGet(`/instances/${id}`);
    check(instance.context_data.paid?.amount === 9, `the step's output: ${JSON.stringify(instance.context_data)}`);
    await page.waitForSelector('#send-event:empty', { state: 'attached' });
    const removed = await fetch(`${base}/workflows/definitions/${name}`, { method: 'DELETE' });
    check(removed.status === 200, `deactivating ${name} answered ${removed.status}`);
    return { instance: id, output: instance.context_data.paid };
  },

  // A workflow's history page: two revisions after a PUT, the diff between them, a source whose
  // comments and titles carry markup shown as text, a restore (a third revision), `live` and a canary
  // alias's weights as the aliases API answers them, then deactivation.
  async history(run) {
    return historyFlow(run, 'history_demo', '', '/workflows');
  },

  // Create a webhook trigger on a workflow's page: its URL and secret shown once; a delivery signed with
  // them starts an instance; after a redraw the secret is nowhere on the page; disable, rotate, delete.
  async triggers(run) {
    const name = 'hooked_ui';
    const registered = await fetch(`${base}/workflows/definitions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, steps: [{ id: 'mark', type: 'machine', task_type: 'data.set', config: { values: { ok: true } } }] }) });
    check([200, 201].includes(registered.status), `registering ${name} answered ${registered.status}`);
    const page = await run.context.newPage();
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${base}/ui#/workflows/${name}`);
    await page.waitForSelector('#no-triggers');
    await page.getByRole('button', { name: 'Create a trigger' }).click();
    await page.waitForSelector('#trigger-secret-value');
    const url = (await page.textContent('#trigger-url')).trim();
    const secret = (await page.textContent('#trigger-secret-value')).trim();
    check(url.startsWith(`${base}/workflows/hooks/hk_`) && secret.startsWith('whsec_'), `shown: ${url} ${secret}`);
    await run.shot(page, 'triggers');
    const deliver = (withSecret) => {
      const body = JSON.stringify({ order: 7 });
      const stamp = String(Math.floor(Date.now() / 1000));
      const key = Buffer.from(withSecret.slice('whsec_'.length), 'base64');
      const signature = createHmac('sha256', key).update(`${stamp}.${body}`).digest('hex');
      return fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json',
        'X-Stepflow-Timestamp': stamp, 'X-Stepflow-Signature': `v1=${signature}` } });
    };
    const fired = await deliver(secret);
    check(fired.status === 201, `the signed delivery answered ${fired.status}`);
    const started = await fired.json();

    // Drawn again: the trigger is listed (fired), its URL and secret are not on the page.
    await page.reload();
    const row = page.locator('#triggers tbody tr');
    await row.first().waitFor();
    const html = await page.content();
    check(!html.includes(secret) && !html.includes(url.split('/').at(-1)), 'the secret or key is still on the page');
    check(await page.isHidden('#trigger-secret'), 'the one-time box is drawn again');
    const id = await row.first().getAttribute('data-trigger');
    await page.getByRole('button', { name: `Disable ${id}` }).click();
    await page.waitForSelector(`#triggers tr[data-trigger="${id}"][data-enabled="false"]`);
    check((await deliver(secret)).status === 404, 'a disabled trigger still answered');
    await page.getByRole('button', { name: `Enable ${id}` }).click();
    await page.waitForSelector(`#triggers tr[data-trigger="${id}"][data-enabled="true"]`);
    await page.getByRole('button', { name: `Rotate ${id}` }).click();
    await page.waitForFunction((old) => {
      const shown = document.querySelector('#trigger-secret-value');
      return shown && shown.textContent.trim() !== old;
    }, secret);
    const rotated = (await page.textContent('#trigger-secret-value')).trim();
    check((await deliver(rotated)).status === 201, 'the rotated secret does not sign');
    await page.getByRole('button', { name: `Delete ${id}` }).click();
    await page.waitForSelector('#no-triggers');
    check((await deliver(rotated)).status === 404, 'a deleted trigger still answered');
    // Deactivated again: the graphs scenario's list of workflows is the one it drew.
    const removed = await fetch(`${base}/workflows/definitions/${name}`, { method: 'DELETE' });
    check(removed.status === 200, `deactivating ${name} answered ${removed.status}`);
    return { instance: started.instance_id, created: started.created };
  },

  // The same behind an API Gateway stage (/dev) with the API under a custom prefix (/api/v1): every
  // request the pages make, every link they build and every action they take stays under the stage.
  async history_stage(run) {
    const strays = await underStage(run.context, '/dev', '/api/v1');
    const result = await historyFlow(run, 'history_stage', '/dev', '/api/v1');
    check(strays.length === 0, `requests outside the stage: ${JSON.stringify(strays)}`);
    return { ...result, stage: '/dev' };
  },


  async credentials(run) {
    return credentialsFlow(run, 'ui_cred', '');
  },

  // The credentials page behind a stage (/dev) with the API at /api/v1: nothing it asks for leaves the stage.
  async credentials_stage(run) {
    const strays = await underStage(run.context, '/dev', '/api/v1');
    const result = await credentialsFlow(run, 'stage_cred', '/dev');
    check(strays.length === 0, `requests outside the stage: ${JSON.stringify(strays)}`);
    return { ...result, stage: '/dev' };
  },

  async kv(run) {
    return kvFlow(run, 'ui_kv', '');
  },

  // The key-value page behind a stage (/dev) with the API at /api/v1: nothing it asks for leaves the stage.
  async kv_stage(run) {
    const strays = await underStage(run.context, '/dev', '/api/v1');
    const result = await kvFlow(run, 'stage_kv', '/dev');
    check(strays.length === 0, `requests outside the stage: ${JSON.stringify(strays)}`);
    return { ...result, stage: '/dev' };
  },

  // With authentication on, the API answers 401 (simulated here, in front of the real API): the UI asks
  // for a bearer token, keeps it in sessionStorage and sends it with every request.
  async auth(run) {
    const { context } = run;
    const page = await context.newPage();
    const seen = [];
    await page.route('**/workflows/**', async (route) => {
      const authorization = route.request().headers().authorization || null;
      seen.push(authorization);
      if (authorization !== 'Bearer s3cret-token') {
        await route.fulfill({ status: 401, contentType: 'application/json', body: '{"detail": "a bearer token is required"}' });
      } else {
        await route.continue();
      }
    });
    await page.goto(`${base}/ui#/workflows`);
    const token = page.getByLabel('Bearer token');
    await token.waitFor({ state: 'visible' });
    check(await token.evaluate((el) => el === document.activeElement), 'focus should be in the token field');
    check((await page.textContent('#auth-reason')).includes('a bearer token is required'), 'the reason is shown');
    await run.shot(page, 'sign-in');
    await fillReady(token, 's3cret-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForSelector('#workflows');
    check(await page.isHidden('#auth'), 'the token panel should close');
    const stored = await page.evaluate(() => sessionStorage.getItem('stepflow.token'));
    check(stored === 's3cret-token', `sessionStorage holds ${stored}`);
    check(seen.at(-1) === 'Bearer s3cret-token', `the last request carried ${seen.at(-1)}`);
    return { requests: seen.length };
  },
};

// Scenarios that register workflows run after the others, whose lists of workflows must not change under them.
const LATE = new Set(['history', 'history_stage', 'triggers', 'send_event', 'operations', 'timeline', 'router_race']);

async function runScenario(browser, name) {
  const run = new Run(browser, name);
  try {
    check(scenarios[name], `no scenario '${name}'`);
    await run.open();
    const result = await scenarios[name](run);
    check(run.problems.length === 0, `the page reported errors:\n${run.problems.join('\n')}`);
    return { ok: true, scenario: name, seconds: (Date.now() - run.started) / 1000, marks: run.marks, result };
  } catch (error) {
    const page = run.context?.pages().at(-1);
    const failureShot = path.join(options.failures || tmpdir(), `failure-${name}.png`);
    try { await page?.screenshot({ path: failureShot, fullPage: true }); } catch { /* the page may be gone */ }
    return { ok: false, scenario: name, seconds: (Date.now() - run.started) / 1000, error: String(error?.stack || error),
      problems: run.problems, url: page?.url(), screenshot: failureShot };
  } finally {
    await run.context?.close();
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
let outcomes;
try {
  const wanted = options.scenarios || [options.scenario];
  outcomes = await Promise.all(wanted.filter((name) => !LATE.has(name)).map((name) => runScenario(browser, name)));
  outcomes.push(...await Promise.all(wanted.filter((name) => LATE.has(name)).map((name) => runScenario(browser, name))));
} finally {
  await browser.close();
}
for (const outcome of outcomes) console.log(JSON.stringify(outcome));
process.exit(outcomes.every((o) => o.ok) ? 0 : 1);
