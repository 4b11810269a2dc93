// Drives the sandbox's own pages in headless Chromium (puppeteer-core) for the Go test of the
// embedded default: a customer asks for a human, an agent accepts on the desk, sees the transcript
// and the context variables, replies; the bridge is killed and restarted (by the Go test, on the
// command "continue"), both pages carry on; the agent ends; the customer sees the end.
// Usage: node sandbox.js '{"base":"http://127.0.0.1:…","agent":"alex"}'. Prints JSON lines.
'use strict';
const puppeteer = require('puppeteer-core');
const readline = require('readline');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = [];
let wake = null;
readline.createInterface({ input: process.stdin }).on('line', (l) => { lines.push(l.trim()); if (wake) wake(); });
const command = () => new Promise((resolve) => {
  const take = () => { if (lines.length) { wake = null; resolve(lines.shift()); } };
  wake = take; take();
});

(async () => {
  const deadline = setTimeout(() => { out({ result: { ok: false, error: 'overall timeout', step, logs } }); process.exit(1); }, opts.timeoutMs || 140000);
  let step = 'launch';
  const logs = [];
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const result = { ok: false };
  try {
    const desk = await browser.newPage();
    const customer = await browser.newPage();
    await desk.setViewport({ width: 1100, height: 860 });
    await customer.setViewport({ width: 760, height: 700 });
    for (const [name, p] of [['desk', desk], ['customer', customer]]) {
      p.on('pageerror', (e) => logs.push(name + ' pageerror: ' + e.message));
      p.on('console', (m) => { if (m.type() === 'error') logs.push(name + ' console: ' + m.text()); });
      p.on('dialog', (dlg) => { logs.push(name + ' dialog: ' + dlg.message()); dlg.dismiss(); });
      p.on('error', (e) => logs.push(name + ' crashed: ' + e.message));
      p.on('close', () => logs.push(name + ' closed during: ' + step));
    }
    // Interval polling: the default (requestAnimationFrame) stalls in a page that is not in
    // front, and two pages take turns here.
    const T = { timeout: 30000, polling: 100 };
    const text = (p, sel) => p.$$eval(sel, (els) => els.map((e) => e.querySelector('.text') ? e.querySelector('.text').textContent : e.textContent));
    const waitText = (p, sel, t, o = T) => p.waitForFunction((s, t) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), o, sel, t);

    step = 'agent signs in';
    await desk.goto(opts.base + '/sandbox/desk?agent=' + encodeURIComponent(opts.agent), { waitUntil: 'load' });
    await desk.waitForFunction(() => document.getElementById('agentName').textContent !== '', T);
    result.presence = await desk.$eval('#presence', (s) => s.value);

    step = 'customer opens the chat';
    await customer.goto(opts.base + '/sandbox/customer', { waitUntil: 'load' });
    await customer.waitForSelector('#status[data-state="online"]', T);
    await customer.waitForSelector('.msg.bot', T); // the greeting
    await customer.bringToFront();
    await customer.type('#input', 'I want to talk to a human');
    await customer.keyboard.press('Enter');
    step = 'customer waits for an agent';
    await waitText(customer, '.msg.system', 'agent');

    step = 'agent gets the offer and accepts';
    await desk.waitForSelector('#convs li[data-state="offered"]', T);
    step = 'agent selects the offer';
    await desk.bringToFront();
    await desk.click('#convs li[data-state="offered"]');
    step = 'agent sees the accept button';
    await desk.waitForSelector('#accept:not([hidden])', T);
    step = 'agent accepts';
    await desk.bringToFront();
    await desk.click('#accept');
    step = 'the conversation becomes active';
    await desk.waitForSelector('#convs li[data-state="active"]', T);
    await waitText(desk, '#transcript .msg.customer', 'I want to talk to a human');
    result.deskTranscript = await desk.$$eval('#transcript .msg', (els) => els.map((e) => e.dataset.role + ': ' + e.querySelector('.text').textContent));
    result.context = await desk.$$eval('#context tr', (rows) => Object.fromEntries(rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])));
    result.agentNote = await desk.$eval('#agentNote', (e) => e.textContent);

    step = 'agent replies';
    await desk.bringToFront();
    await desk.type('#replyText', 'Hello, this is Alex.');
    await desk.keyboard.press('Enter');
    await waitText(customer, '.msg.agent', 'Hello, this is Alex.');

    if (opts.screenshots) { // the handoff in progress, for the README
      await desk.bringToFront();
      await desk.screenshot({ path: opts.screenshots + '/sandbox-desk-active.png' });
      await customer.bringToFront();
      await customer.screenshot({ path: opts.screenshots + '/sandbox-customer-active.png' });
    }
    out({ event: 'ready-for-restart' });
    step = 'waiting for the restart';
    await command();

    step = 'after the restart: the agent still holds the conversation';
    await desk.waitForSelector('body[data-conn="online"]', T); // the desk page reconnected
    await desk.waitForFunction(() => document.getElementById('load').textContent.startsWith('load'), T);
    await desk.waitForSelector('#convs li[data-state="active"]', T);
    await desk.bringToFront();
    await desk.click('#convs li[data-state="active"]');
    await waitText(desk, '#transcript .msg.agent', 'Hello, this is Alex.');
    result.deskTranscriptAfterRestart = await desk.$$eval('#transcript .msg', (els) => els.map((e) => e.dataset.role + ': ' + e.querySelector('.text').textContent));
    await desk.bringToFront();
    await desk.type('#replyText', 'Still here after the restart.');
    await desk.keyboard.press('Enter');
    step = 'after the restart: the customer page resumes';
    await waitText(customer, '.msg.agent', 'Still here after the restart.', { timeout: 60000, polling: 100 });
    await customer.waitForSelector('#status[data-state="online"]', T);
    await customer.bringToFront();
    await customer.type('#input', 'Thanks!');
    await customer.keyboard.press('Enter');
    await waitText(desk, '#transcript .msg.customer', 'Thanks!');

    step = 'agent ends';
    await desk.bringToFront();
    await desk.click('#end');
    await waitText(customer, '.msg.system', 'The conversation has ended.');
    await customer.waitForSelector('#status[data-state="ended"]', T);

    result.customerTranscript = await customer.$$eval('#transcript .msg', (els) => els.map((e) => ({ id: e.dataset.id || '', role: e.dataset.role, text: e.querySelector('.text').textContent })));
    const ids = result.customerTranscript.map((m) => m.id).filter(Boolean);
    result.duplicates = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (opts.screenshots) {
      await customer.screenshot({ path: opts.screenshots + '/sandbox-customer.png' });
      await desk.screenshot({ path: opts.screenshots + '/sandbox-desk.png' });
    }
    result.ok = true;
  } catch (e) {
    result.error = step + ': ' + e.message;
    try { // what the pages showed when it failed
      const pages = await browser.pages();
      for (const p of pages) {
        const url = p.url();
        result.diagnostics = result.diagnostics || {};
        result.diagnostics[url] = await p.evaluate(() => ({
          conn: document.body.dataset.conn || '', error: (document.getElementById('error') || {}).textContent || '',
          status: (document.getElementById('status') || {}).textContent || '',
          convs: [...document.querySelectorAll('#convs li')].map((li) => li.dataset.id + ':' + li.dataset.state),
          last: [...document.querySelectorAll('.msg')].slice(-4).map((m) => m.dataset.role + ': ' + m.textContent.slice(0, 80)),
        }));
      }
    } catch (_) { /* best effort */ }
  } finally {
    result.logs = logs.slice(-20);
    clearTimeout(deadline);
    out({ result });
    await browser.close();
    process.exit(result.ok ? 0 : 1);
  }
})();
