// page_driver.mjs: drives berthd's status page in headless Chromium for
// test_page.py, over a line protocol on stdin/stdout.
//
//   node page_driver.mjs --check   exit 0 if playwright-core and Chromium
//                                  are there, else print what is missing, 3
//   node page_driver.mjs URL       open URL, print "loaded", then obey:
//
//   expect-row NAME      wait until the table has a row for NAME;
//                        "ok {json: href (null without a link), cells,
//                        cls (the row's class)}"
//   expect-no-row NAME   wait until it has none; "ok"
//   expect-instance NAME NODE
//                        wait until the cluster's table has a row for
//                        NODE's instance of NAME; "ok {json}" as expect-row
//   expect-no-instance NAME NODE
//                        wait until it has none; "ok"
//   expect-text JSON     JSON is [SELECTOR, TEXT]: wait until the first
//                        element SELECTOR matches has the text TEXT
//                        (whitespace collapsed); "ok"
//   expect-match JSON    JSON is [SELECTOR, REGEX]: the same, until the
//                        text matches REGEX; "ok TEXT"
//   expect-visible SEL   wait until the element SEL is shown; "ok"
//   expect-hidden SEL    wait until it is hidden (or absent); "ok"
//   state                "ok TEXT" of the page's update state
//   screenshot PATH      save the whole page as a PNG at PATH; "ok"
//   click NAME           follow NAME's address link; "ok {json: url, text}"
//   problems             "ok [json]": console errors and warnings, page
//                        errors, CSP violations, dialogs, and navigations
//                        after the first load other than by click
//   quit                 close Chromium and exit
//
// Every wait gives up after WAIT_MS and answers "fail WHY". playwright-core
// is found by Node's module resolution, NODE_PATH included; Chromium is
// /usr/bin/chromium unless BERTH_TEST_CHROMIUM names another.
import { createRequire } from 'node:module';
import { accessSync, constants } from 'node:fs';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const WAIT_MS = 10000;
const CHROMIUM = process.env.BERTH_TEST_CHROMIUM || '/usr/bin/chromium';

function out(line) {
  process.stdout.write(line.replace(/\n/g, ' ') + '\n');
}

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    return null;
  }
}

if (process.argv[2] === '--check') {
  const missing = [];
  if (loadPlaywright() === null)
    missing.push('the npm package playwright-core (.ci/test-deps ' +
      'installs it in the checkout; or npm install playwright-core@1 ' +
      'elsewhere and set NODE_PATH to its node_modules)');
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch (e) {
    missing.push(CHROMIUM + ' (apt-get install chromium)');
  }
  if (missing.length > 0) {
    out('missing: ' + missing.join('; '));
    process.exit(3);
  }
  out('ok');
  process.exit(0);
}

const url = process.argv[2];
const { chromium } = loadPlaywright();
const problems = [];
let navigations = 0;
let clicked = false;
let browser = null;

// Never outlive the test: give up after two minutes.
setTimeout(() => { out('fail driver timeout'); finish(2); }, 120000).unref();

async function finish(code) {
  if (browser !== null) {
    try { await browser.close(); } catch (e) { /* already gone */ }
  }
  process.exit(code);
}

const quote = (s) => '"' + s.replace(/["\\]/g, '\\$&') + '"';

function rowSelector(name) {
  return '#leases > tr[data-name=' + quote(name) + ']';
}

function instanceSelector(arg) {
  const [name, node] = arg.split(/\s+/);
  return '#instances > tr[data-name=' + quote(name) + '][data-node=' +
    quote(node || '') + ']';
}

// A row's address link (null without one), cells and class.
async function rowJson(row) {
  await row.waitFor({ state: 'attached', timeout: WAIT_MS });
  const links = row.locator('a');
  const href = await links.count() > 0 ?
    await links.first().getAttribute('href') : null;
  const cells = await row.locator('td').allTextContents();
  const cls = await row.getAttribute('class');
  return 'ok ' + JSON.stringify({ href, cells, cls });
}

// The text of the first element sel matches, whitespace collapsed, once
// it is text (a string) or matches it (a RegExp): "ok" or "ok TEXT"; or
// fail after WAIT_MS saying what it was.
async function expectText(page, sel, text) {
  const el = page.locator(sel).first();
  const norm = (t) => (t || '').replace(/\s+/g, ' ').trim();
  const until = Date.now() + WAIT_MS;
  let now = null;
  for (;;) {
    if (await el.count() > 0) {
      now = norm(await el.textContent());
      if (now === text)
        return 'ok';
      if (text instanceof RegExp && text.test(now))
        return 'ok ' + now;
    }
    if (Date.now() > until)
      return 'fail ' + sel + ' has ' + JSON.stringify(now) + ', not ' +
        (text instanceof RegExp ? String(text) : JSON.stringify(text));
    await page.waitForTimeout(100);
  }
}

async function run(page, line) {
  const cmd = line.trim().split(/\s+/, 1)[0];
  const arg = line.trim().slice(cmd.length).trim();
  switch (cmd) {
  case 'expect-row':
    return rowJson(page.locator(rowSelector(arg)));
  case 'expect-instance':
    return rowJson(page.locator(instanceSelector(arg)));
  case 'expect-no-instance':
    await page.locator(instanceSelector(arg)).waitFor({ state: 'detached',
      timeout: WAIT_MS });
    return 'ok';
  case 'expect-text': {
    const [sel, text] = JSON.parse(arg);
    return expectText(page, sel, text);
  }
  case 'expect-match': {
    const [sel, re] = JSON.parse(arg);
    return expectText(page, sel, new RegExp(re, 'u'));
  }
  case 'expect-visible':
  case 'expect-hidden':
    await page.locator(arg).first().waitFor({ timeout: WAIT_MS,
      state: cmd === 'expect-visible' ? 'visible' : 'hidden' });
    return 'ok';
  case 'screenshot':
    await page.screenshot({ path: arg, fullPage: true });
    return 'ok';
  case 'expect-no-row':
    await page.locator(rowSelector(arg)).waitFor({ state: 'detached',
      timeout: WAIT_MS });
    return 'ok';
  case 'state':
    return 'ok ' + await page.locator('#state').textContent();
  case 'click': {
    const link = page.locator(rowSelector(arg) + ' a');
    clicked = true;
    await Promise.all([
      page.waitForNavigation({ timeout: WAIT_MS }),
      link.click({ timeout: WAIT_MS }),
    ]);
    const text = await page.locator('body').textContent();
    return 'ok ' + JSON.stringify({ url: page.url(), text });
  }
  case 'problems':
    return 'ok ' + JSON.stringify(problems.concat(navigations > 0 ?
      ['page navigated ' + navigations + ' time(s) after loading'] : []));
  case 'quit':
    await finish(0);
    return 'ok';
  default:
    return 'fail unknown command ' + JSON.stringify(line);
  }
}

async function main() {
  const args = [];
  if (process.getuid && process.getuid() === 0)
    args.push('--no-sandbox');
  browser = await chromium.launch({ executablePath: CHROMIUM,
    headless: true, args });
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      problems.push('console ' + m.type() + ': ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('dialog', (d) => {
    problems.push('dialog: ' + d.message());
    d.dismiss().catch(() => {});
  });
  // CSP violations also reach the console; this catches any that do not.
  await page.exposeFunction('berthCspViolation',
    (what) => problems.push('CSP violation: ' + what));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.berthCspViolation(e.violatedDirective + ' blocked ' +
        (e.blockedURI || 'inline') + ' at line ' + e.lineNumber);
    });
  });
  let loaded = false;
  page.on('framenavigated', (f) => {
    if (loaded && !clicked && f === page.mainFrame())
      navigations++;
  });
  const resp = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  loaded = true;
  if (resp === null || resp.status() !== 200) {
    out('fail load status ' + (resp === null ? 'none' : resp.status()));
    await finish(1);
  }
  out('loaded');

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === '')
      continue;
    let answer;
    try {
      answer = await run(page, line);
    } catch (e) {
      answer = 'fail ' + e.message.split('\n')[0];
    }
    out(answer);
  }
  // stdin closed: the test is gone.
  await finish(0);
}

main().catch((e) => {
  out('fail ' + (e && e.message ? e.message.split('\n')[0] : String(e)));
  finish(1);
});
