// Drives botframework-webchat (npm) in headless Chromium via puppeteer-core, for the Go interop
// tests. Usage: node webchat.js '{"pageUrl":"http://127.0.0.1:…/","text":"…"}'. The page renders
// Web Chat against the bridge's Direct Line server and exposes its redux store as window.store.
// Prints one JSON line: {"result":{…}}. Bounded in time; exits by itself.
'use strict';
const puppeteer = require('puppeteer-core');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

(async () => {
  const deadline = setTimeout(() => { out({ result: { ok: false, error: 'overall timeout' } }); process.exit(1); }, opts.timeoutMs || 90000);
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const consoleLines = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => consoleLines.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => consoleLines.push('pageerror: ' + e.message));
    await page.goto(opts.pageUrl, { waitUntil: 'load', timeout: 30000 });
    const input = '[data-id="webchat-sendbox-input"]';
    await page.waitForSelector(input, { timeout: 30000 });
    // Web Chat is connected once the store's connectivity says so.
    await page.waitForFunction(() => window.store && window.store.getState().connectivityStatus === 'connected', { timeout: 30000 });
    const text = opts.text || 'hello from web chat';
    await page.type(input, text);
    await page.keyboard.press('Enter');
    const expected = 'echo: ' + text;
    await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: 30000 }, expected);
    // The outgoing activity must leave "sending" (Web Chat waits for the echo with the same
    // clientActivityID and an id), not time out into "send failed".
    await page.waitForFunction(() => window.store.getState().activities
      .filter((a) => a.from && a.from.role === 'user')
      .every((a) => a.channelData && a.channelData.state === 'sent'), { timeout: 30000 });
    const state = await page.evaluate(() => window.store.getState().activities.map((a) => ({
      id: a.id, type: a.type, role: a.from && a.from.role, text: a.text, state: a.channelData && a.channelData.state,
      clientActivityID: a.channelData && a.channelData.clientActivityID, replyToId: a.replyToId,
    })));
    const bodyText = await page.evaluate(() => document.body.innerText);
    await page.screenshot({ path: opts.screenshot || '/tmp/bfbridge-webchat.png' });
    clearTimeout(deadline);
    out({ result: { ok: true, activities: state, sendFailedShown: /send failed/i.test(bodyText), console: consoleLines.slice(-30) } });
  } catch (e) {
    out({ result: { ok: false, error: e.message, console: consoleLines.slice(-30) } });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
  process.exit(process.exitCode || 0);
})();
