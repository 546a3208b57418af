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
    this.context.setDefaultTimeout(20000);
    this.context.on('page', (page) => {
      page.on('pageerror', (error) => this.problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        // The API's validation and sign-in answers (400, 401, 409, 422) are expected in these flows, and
        // the 404 the history scenario asks for (a revision that does not exist).
        const expected = /Failed to load resource: the server responded with a status of (400|401|409|422)/.test(message.text())
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
    const response = await route.fetch({ url: `${base}${rest}${url.search}` });
    if (rest !== '/ui' && rest !== '/ui/') return route.fulfill({ response });
    const page = (await response.text())
      .replaceAll('"/ui', `"${stage}/ui`).replace('content="/workflows"', `content="${stage}${apiPrefix}"`);
    return route.fulfill({ response, body: page });
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

const scenarios = {
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
    await page.waitForFunction(() => !!document.querySelector('#ops-failures tr[data-task-type="data.assert"]'), null, { timeout: 30000 });
    // Other scenarios change things meanwhile: the latest entries are theirs or ours, two at least.
    await page.waitForFunction(() => document.querySelectorAll('#ops-audit tbody tr[data-operation]').length >= 2,
      null, { timeout: 30000 });
    const missing = await unlabelled(page, '#operations');
    check(missing.length === 0, `controls without a label: ${missing.join(' ')}`);
    check(await page.getAttribute('a[data-nav="operations"]', 'aria-current') === 'page', 'the nav marks the page');
    await run.shot(page, 'operations');
    const error = await page.$eval('#ops-failures tr[data-task-type="data.assert"]', (tr) => tr.dataset.error);
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

    await page.getByLabel('order_id').fill('A-1001');
    await page.getByLabel('amount').fill('120');
    await page.getByLabel('name').fill('Ada Lovelace');
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

  // Expense approval through the inbox: start it, find the task under "Mine", submit the form
  // without a decision (an inline error), approve, and watch the instance complete all green.
  // A second tab that still shows the form then gets "already completed".
  async inbox(run) {
    const { context } = run;
    const page = await context.newPage();
    await page.goto(`${base}/ui#/workflows/expense_approval`);
    await page.fill('#identity-user', 'bob');
    await page.fill('#identity-groups', 'managers');
    await page.getByRole('button', { name: 'Save' }).click();
    await waitForGraph(page, '#definition-graph');
    await page.getByLabel('requester').fill('alice');
    await page.getByLabel('manager').fill('bob');
    await page.getByLabel('amount').fill('250');
    await page.getByLabel('description').fill('Conference train tickets');
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
    const taskLink = page.locator('#tasks tr[data-step="manager_approval"] th a');
    const taskHref = await taskLink.getAttribute('href');
    await taskLink.click();
    await page.waitForSelector('#complete-form');

    const missing = await unlabelled(page, 'main');
    check(missing.length === 0, `controls without a label: ${missing.join(' ')}`);

    const other = await context.newPage(); // a second tab on the same task
    await other.goto(`${base}/ui${taskHref}`);
    await other.waitForSelector('#complete-form');

    await page.getByLabel('Comments').fill('Fine by me');
    await page.getByRole('button', { name: 'Complete task' }).click();
    const error = page.locator('.field-boolean .field-error');
    await error.waitFor({ state: 'visible' });
    check((await error.textContent()).includes('required'), `the decision's error: ${await error.textContent()}`);
    const invalid = await page.getAttribute('.field-boolean input[value="true"]', 'aria-invalid');
    check(invalid === 'true', 'the radio buttons should be marked aria-invalid');
    await page.waitForSelector('#complete-message[role="alert"]');
    await run.shot(page, 'task-form-error');

    await page.getByRole('radio', { name: 'Yes' }).check();
    await page.getByRole('button', { name: 'Complete task' }).click();
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
    return { instanceId, counts };
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
    await token.fill('s3cret-token');
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
const LATE = new Set(['history', 'history_stage', 'triggers', 'operations']);

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
