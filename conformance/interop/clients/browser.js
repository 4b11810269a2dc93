// What the browser clients share: headless Chromium (Debian's, or CHROMIUM) launched with the
// flags the interop tests use, and for the Web Chat pages the whole run — a deadline, the
// page's console kept, Web Chat connected, one JSON result line printed, the browser closed and
// the process ended. Used by webchat.js, webchat-sso.js and sandbox.js.
'use strict';
const puppeteer = require('puppeteer-core');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// launch starts headless Chromium.
function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// runWebChat opens opts.pageUrl (a page that renders Web Chat and exposes its redux store as
// window.store), waits until Web Chat is connected, and calls body(page), whose answer is the
// result ({ok: true, …, console}). A failure prints {ok: false, error, bodyText, console}. The
// run is bounded by opts.timeoutMs (90 s by default) and ends the process.
function runWebChat(opts, body) {
  (async () => {
    const deadline = setTimeout(() => { out({ result: { ok: false, error: 'overall timeout' } }); process.exit(1); }, opts.timeoutMs || 90000);
    const browser = await launch();
    const consoleLines = [];
    let page;
    try {
      page = await browser.newPage();
      page.on('console', (m) => consoleLines.push(m.type() + ': ' + m.text()));
      page.on('pageerror', (e) => consoleLines.push('pageerror: ' + e.message));
      await page.goto(opts.pageUrl, { waitUntil: 'load', timeout: 30000 });
      await page.waitForSelector('[data-id="webchat-sendbox-input"]', { timeout: 30000 });
      // Web Chat is connected once the store's connectivity says so.
      await page.waitForFunction(() => window.store && window.store.getState().connectivityStatus === 'connected', { timeout: 30000 });
      const result = await body(page);
      clearTimeout(deadline);
      out({ result: { ok: true, ...result, console: consoleLines.slice(-30) } });
    } catch (e) {
      let bodyText = '';
      try { bodyText = await page.evaluate(() => document.body.innerText); } catch (_) { /* no page */ }
      out({ result: { ok: false, error: e.message, bodyText, console: consoleLines.slice(-30) } });
      process.exitCode = 1;
    } finally {
      await browser.close();
    }
    process.exit(process.exitCode || 0);
  })();
}

// send types text into Web Chat's send box and sends it.
async function send(page, text) {
  const input = '[data-id="webchat-sendbox-input"]';
  await page.type(input, text);
  await page.keyboard.press('Enter');
}

module.exports = { launch, runWebChat, send, out };
