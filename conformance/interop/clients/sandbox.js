// Drives the sandbox's own pages in headless Chromium (puppeteer-core) for the Go test of the
// embedded default, with one browser for the whole run:
//   - the desk refuses an unknown agent, saying so and listing the sandbox's agents;
//   - Alex signs in (the only agent signed in) and stays signed in across a reload;
//   - a customer on the customer page asks for a human: the offer reaches Alex (not Sam or
//     Nina, who have no desk open), the supervisor shows it (to whom, for how long), the desk
//     shows it with a countdown and the customer's name (never an id); Alex accepts, replies;
//   - a second customer, in Microsoft's Web Chat on /sandbox/webchat (its bundle served from the
//     npm package instead of the CDN), asks for a human: the offer reaches Alex too; Alex
//     accepts, replies; Web Chat shows the reply with Alex's name; Alex ends; Web Chat shows
//     the end;
//   - the bridge is killed (by the Go test, on "ready-for-restart"); the customer types while it
//     is down (on "killed"); the bridge starts again (on "continue"); the message arrives;
//   - the agent ends; the customer sees the end;
//   - on a second bridge whose bot endpoint does not answer, a customer's message is refused and
//     the page says, in words, that the service is unavailable.
// Usage: node sandbox.js '{"base":"http://127.0.0.1:…","agent":"alex","webchatBundle":"…/webchat.js"}'.
// Prints JSON lines.
'use strict';
const fs = require('fs');
const { launch } = require('./browser');
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
  const deadline = setTimeout(() => { out({ result: { ok: false, error: 'overall timeout', step, logs } }); process.exit(1); }, opts.timeoutMs || 200000);
  let step = 'launch';
  const logs = [];
  const browser = await launch();
  const result = { ok: false };
  const shot = async (p, name) => { if (opts.screenshots) { await p.bringToFront(); await p.screenshot({ path: opts.screenshots + '/' + name, fullPage: true }); } };
  try {
    const watch = (name, p) => {
      p.on('pageerror', (e) => logs.push(name + ' pageerror: ' + e.message));
      p.on('console', (m) => { if (m.type() === 'error') logs.push(name + ' console: ' + m.text()); });
      p.on('dialog', (dlg) => { logs.push(name + ' dialog: ' + dlg.message()); dlg.dismiss(); });
      p.on('error', (e) => logs.push(name + ' crashed: ' + e.message));
    };
    const desk = await browser.newPage();
    const customer = await browser.newPage();
    watch('desk', desk);
    watch('customer', customer);
    await desk.setViewport({ width: 1100, height: 860 });
    await customer.setViewport({ width: 760, height: 700 });
    // Interval polling: the default (requestAnimationFrame) stalls in a page that is not in
    // front, and several pages take turns here.
    const T = { timeout: 30000, polling: 100 };
    const waitText = (p, sel, t, o = T) => p.waitForFunction((s, t) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)), o, sel, t);
    const labels = (p, sel) => p.$$eval(sel, (els) => els.map((e) => e.querySelector('.who').firstChild.textContent.trim()));

    step = 'an unknown agent signs in';
    await desk.bringToFront();
    await desk.goto(opts.base + '/sandbox/desk', { waitUntil: 'load' });
    result.placeholder = await desk.$eval('#agent', (e) => e.placeholder);
    await desk.waitForFunction(() => document.getElementById('signinHelp').textContent !== '', T);
    await desk.type('#agent', 'alice');
    await desk.click('#signin button[type="submit"]');
    await desk.waitForSelector('#error:not([hidden])', T);
    result.unknownSignIn = await desk.$eval('#error', (e) => e.textContent);
    result.signinFormAfterUnknown = await desk.$eval('#signin', (e) => !e.hidden);

    step = 'the agent signs in, and reloads';
    await desk.$eval('#agent', (e) => { e.value = ''; });
    await desk.type('#agent', opts.agent);
    await desk.click('#signin button[type="submit"]');
    await desk.waitForSelector('body[data-conn="online"]', T);
    await desk.reload({ waitUntil: 'load' });
    await desk.waitForSelector('body[data-conn="online"]', T);
    await desk.waitForFunction(() => document.getElementById('agentName').textContent !== '', T);
    result.afterReload = { agent: await desk.$eval('#agentName', (e) => e.textContent), signinHidden: await desk.$eval('#signin', (e) => e.hidden) };
    await desk.waitForFunction(() => document.getElementById('presence').value === 'Available', T);
    result.presence = await desk.$eval('#presence', (s) => s.value);
    await waitText(desk, '#empty', 'waiting for offers');
    result.emptyState = await desk.$eval('#empty', (e) => e.textContent);

    step = 'customer opens the chat';
    await customer.goto(opts.base + '/sandbox/customer', { waitUntil: 'load' });
    await customer.waitForSelector('#status[data-state="online"]', T);
    await customer.waitForSelector('.msg.bot', T); // the greeting
    await customer.bringToFront();
    await customer.type('#input', 'I want to talk to a human');
    await customer.keyboard.press('Enter');
    step = 'customer waits for an agent';
    await waitText(customer, '.msg.system', 'agent');

    step = 'the offer reaches the only agent signed in';
    await desk.waitForSelector('#convs li[data-state="offered"]', T);
    await desk.bringToFront();
    await desk.click('#convs li[data-state="offered"]');
    await desk.waitForSelector('#accept:not([hidden])', T);
    await desk.waitForFunction(() => /accept within \d+:\d\d/.test(document.getElementById('countdown').textContent), T);
    result.countdown = await desk.$eval('#countdown', (e) => e.textContent);
    result.offeredLabel = await desk.$eval('#convs li[data-state="offered"]', (e) => e.textContent);

    step = 'the supervisor shows the offer';
    const sup = await browser.newPage();
    watch('supervisor', sup);
    await sup.setViewport({ width: 1000, height: 760 });
    await sup.goto(opts.base + '/sandbox/supervisor', { waitUntil: 'load' });
    await sup.waitForFunction(() => document.querySelectorAll('#offers tbody tr').length > 0, T);
    result.supervisorOffers = await sup.$$eval('#offers tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    result.supervisorAgents = await sup.$$eval('#agents tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    result.supervisorQueues = await sup.$$eval('#queues tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    await shot(sup, 'sandbox-supervisor.png');

    step = 'agent accepts';
    await desk.bringToFront();
    await desk.click('#accept');
    await desk.waitForSelector('#convs li[data-state="active"]', T);
    await desk.click('#convs li[data-state="active"]');
    await waitText(desk, '#transcript .msg.customer', 'I want to talk to a human');
    result.deskTranscript = await desk.$$eval('#transcript .msg', (els) => els.map((e) => e.dataset.role + ': ' + e.querySelector('.text').textContent));
    result.deskLabels = await labels(desk, '#transcript .msg');
    result.deskTitle = await desk.$eval('#title', (e) => e.textContent);
    result.deskTimes = await desk.$$eval('#transcript .msg time', (els) => els.map((e) => e.textContent));
    result.context = await desk.$$eval('#context tr', (rows) => Object.fromEntries(rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])));
    result.agentNote = await desk.$eval('#agentNote', (e) => e.textContent);

    step = 'agent replies';
    await desk.type('#replyText', 'Hello, this is Alex.');
    await desk.keyboard.press('Enter');
    await waitText(customer, '.msg.agent', 'Hello, this is Alex.');
    result.customerLabels = await labels(customer, '#transcript .msg');

    step = 'a second customer, in Web Chat, asks for a human';
    const wc = await browser.newPage();
    watch('webchat', wc);
    await wc.setViewport({ width: 760, height: 760 });
    const bundle = fs.readFileSync(opts.webchatBundle);
    await wc.setRequestInterception(true);
    wc.on('request', (r) => {
      if (r.url().startsWith('https://cdn.botframework.com/botframework-webchat/')) {
        result.webchatBundleRequested = r.url();
        r.respond({ status: 200, contentType: 'application/javascript', body: bundle });
      } else if (!r.url().startsWith(opts.base)) {
        r.abort(); // nothing else leaves the machine
      } else {
        r.continue();
      }
    });
    await wc.goto(opts.base + '/sandbox/webchat', { waitUntil: 'load' });
    const wcInput = '[data-id="webchat-sendbox-input"]';
    await wc.waitForSelector(wcInput, T);
    await wc.waitForFunction(() => window.store && window.store.getState().connectivityStatus === 'connected', T);
    await wc.waitForFunction(() => document.body.innerText.includes('sandbox bot'), T); // the greeting
    await wc.type(wcInput, 'I want to talk to a human');
    await wc.keyboard.press('Enter');
    step = 'the Web Chat customer is offered to the same agent';
    await desk.bringToFront();
    await desk.waitForSelector('#convs li[data-state="offered"]', T);
    await desk.click('#convs li[data-state="offered"]');
    await desk.waitForSelector('#accept:not([hidden])', T);
    await desk.click('#accept');
    await desk.waitForFunction(() => document.querySelectorAll('#convs li[data-state="active"]').length === 2, T);
    result.deskList = await desk.$$eval('#convs li', (els) => els.map((e) => e.textContent));
    await desk.type('#replyText', 'Hi, Alex here for Web Chat.');
    await desk.keyboard.press('Enter');
    step = 'Web Chat shows the agent by name';
    await wc.bringToFront();
    await wc.waitForFunction(() => document.body.innerText.includes('Hi, Alex here for Web Chat.'), T);
    await wc.waitForFunction(() => [...document.querySelectorAll('.bfbridge-from[data-role="agent"] .bfbridge-name')].some((e) => e.textContent === 'Alex'), T);
    result.webchatNames = await wc.$$eval('.bfbridge-name', (els) => els.map((e) => e.textContent));
    await shot(wc, 'sandbox-webchat.png');
    step = 'the agent ends the Web Chat conversation';
    await desk.bringToFront();
    const wcConv = await desk.$eval('#convs li.selected', (e) => e.dataset.id);
    await desk.click('#end');
    await desk.waitForFunction((id) => !document.querySelector('#convs li[data-id="' + id + '"]'), T, wcConv);
    await wc.bringToFront();
    await wc.waitForSelector('body[data-ended="true"]', T);
    await wc.waitForFunction(() => document.body.innerText.includes('The conversation has ended.'), T);
    result.webchatEnded = true;
    await shot(wc, 'sandbox-webchat.png');
    await wc.close();

    if (opts.screenshots) { // the handoff in progress, for the README
      await desk.bringToFront();
      await desk.click('#convs li[data-state="active"]');
      await shot(desk, 'sandbox-desk-active.png');
      await shot(customer, 'sandbox-customer-active.png');
    }
    out({ event: 'ready-for-restart' });
    step = 'waiting for the bridge to be killed';
    await command();
    step = 'the customer types while the bridge is down';
    await customer.bringToFront();
    await customer.waitForSelector('#status[data-state="reconnecting"]', T);
    await customer.type('#input', 'Typed while you were away.');
    await customer.keyboard.press('Enter');
    await customer.waitForSelector('#unsent .msg.customer', T);
    await customer.type('#input', 'And a second one.');
    await customer.keyboard.press('Enter');
    result.unsentWhileDown = await customer.$$eval('#unsent .msg.customer .text', (els) => els.map((e) => e.textContent));
    out({ event: 'typed' });
    step = 'waiting for the restart';
    await command();

    step = 'after the restart: the agent still holds the conversation';
    await desk.bringToFront();
    await desk.waitForSelector('body[data-conn="online"]', T); // the desk page reconnected
    await desk.waitForFunction(() => document.getElementById('load').textContent.startsWith('load'), T);
    await desk.waitForSelector('#convs li[data-state="active"]', T);
    await desk.bringToFront();
    await desk.click('#convs li[data-state="active"]');
    await waitText(desk, '#transcript .msg.agent', 'Hello, this is Alex.');
    step = 'after the restart: what the customer typed arrives';
    await waitText(desk, '#transcript .msg.customer', 'Typed while you were away.', { timeout: 60000, polling: 100 });
    await waitText(desk, '#transcript .msg.customer', 'And a second one.', { timeout: 60000, polling: 100 });
    result.deskTranscriptAfterRestart = await desk.$$eval('#transcript .msg', (els) => els.map((e) => e.dataset.role + ': ' + e.querySelector('.text').textContent));
    await desk.bringToFront();
    await desk.type('#replyText', 'Still here after the restart.');
    await desk.keyboard.press('Enter');
    step = 'after the restart: the customer page resumes';
    await waitText(customer, '.msg.agent', 'Still here after the restart.', { timeout: 60000, polling: 100 });
    await customer.waitForSelector('#status[data-state="online"]', T);
    await customer.waitForFunction(() => document.querySelectorAll('#unsent .msg').length === 0, T);
    result.customerWaitingLeft = await customer.$$eval('.msg.customer.waiting, .msg.customer.failed, .msg.customer.sending', (els) => els.length);
    await customer.bringToFront();
    await customer.type('#input', 'Thanks!');
    await customer.keyboard.press('Enter');
    await desk.bringToFront();
    await waitText(desk, '#transcript .msg.customer', 'Thanks!');
    await shot(desk, 'sandbox-desk.png');

    step = 'agent ends';
    await desk.bringToFront();
    await desk.click('#end');
    await waitText(customer, '.msg.system', 'The conversation has ended.');
    await customer.waitForSelector('#status[data-state="ended"]', T);

    result.customerTranscript = await customer.$$eval('#transcript .msg', (els) => els.map((e) => ({ id: e.dataset.id || '', role: e.dataset.role, text: e.querySelector('.text').textContent })));
    const ids = result.customerTranscript.map((m) => m.id).filter(Boolean);
    result.duplicates = ids.filter((id, i) => ids.indexOf(id) !== i);
    await shot(customer, 'sandbox-customer.png');

    if (opts.unreachableBase) {
      step = 'a bridge whose bot does not answer: the customer reads that the service is unavailable';
      const lone = await browser.createBrowserContext(); // a page of its own: no stored conversation
      const c2 = await lone.newPage();
      watch('unreachable', c2);
      await c2.goto(opts.unreachableBase + '/sandbox/customer', { waitUntil: 'load' });
      await c2.waitForSelector('#status[data-state="online"]', T);
      await c2.type('#input', 'Is anyone there?');
      await c2.keyboard.press('Enter');
      await c2.waitForSelector('#banner:not([hidden])', T);
      await c2.waitForSelector('.msg.customer.failed .error-line', T);
      result.unreachable = { banner: await c2.$eval('#banner', (e) => e.textContent), line: await c2.$eval('.msg.customer.failed .error-line', (e) => e.textContent) };
      await lone.close();
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
          text: document.body.innerText.slice(-400),
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
