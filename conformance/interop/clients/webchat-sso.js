// Drives botframework-webchat (npm) in headless Chromium via puppeteer-core for the single
// sign-on test. Usage: node webchat-sso.js '{"pageUrl":"…","text":"login","expect":"signed in:"}'.
// The page (served by the Go test) renders Web Chat with an SSO store middleware in the way of
// the Copilot Studio SSO sample (reference/signin.md §2c [CSS SSOwithEntraID]): on an incoming
// OAuthCard with tokenExchangeResource it holds the card back and posts signin/tokenExchange
// {id, connectionName, token} with the token the page got from its identity provider; an id
// back hides the card for good, "retry" or an error shows it. The page records what happened
// in window.sso. This script types the text, waits for the page's SSO outcome (and for the text
// opts.expect, when given), and prints one JSON line {"result":{…}}.
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
    await page.waitForFunction(() => window.store && window.store.getState().connectivityStatus === 'connected', { timeout: 30000 });
    await page.type(input, opts.text || 'login');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.sso && window.sso.outcome, { timeout: 30000 });
    if (opts.expect) {
      await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: 30000 }, opts.expect);
    } else {
      // the card, when shown, is rendered after the outcome: give it a moment to appear
      await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: 10000 }, opts.cardText || 'Please sign in').catch(() => {});
    }
    const sso = await page.evaluate(() => window.sso);
    const bodyText = await page.evaluate(() => document.body.innerText);
    const activities = await page.evaluate(() => window.store.getState().activities.map((a) => ({
      type: a.type, role: a.from && a.from.role, text: a.text, name: a.name,
      attachments: (a.attachments || []).map((x) => x.contentType),
    })));
    clearTimeout(deadline);
    out({ result: { ok: true, sso, bodyText, activities, cardShown: bodyText.includes(opts.cardText || 'Please sign in'), console: consoleLines.slice(-30) } });
  } catch (e) {
    let bodyText = '';
    try { bodyText = await (await browser.pages())[1].evaluate(() => document.body.innerText); } catch (_) { /* no page */ }
    out({ result: { ok: false, error: e.message, bodyText, console: consoleLines.slice(-30) } });
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
  process.exit(process.exitCode || 0);
})();
