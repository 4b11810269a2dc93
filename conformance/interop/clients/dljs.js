// Drives the real botframework-directlinejs client (npm) against a Direct Line server, for the Go
// interop tests. Usage: node dljs.js '<json options>'. It prints one JSON object per line: events
// as they happen ({"event":…}) and, last, {"result":…}. Lines read from stdin are commands from
// the test ("continue"). Every wait is bounded; the process exits by itself.
'use strict';
global.XMLHttpRequest = require('xhr2');
global.WebSocket = require('ws');
const readline = require('readline');
const { DirectLine } = require('botframework-directlinejs');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (msg) => { out({ result: { ok: false, error: msg } }); process.exit(1); };
setTimeout(() => fail('overall timeout'), opts.timeoutMs || 60000).unref();

const commands = [];
let onCommand = null;
readline.createInterface({ input: process.stdin }).on('line', (l) => { commands.push(l.trim()); if (onCommand) onCommand(); });
function nextCommand() {
  return new Promise((resolve) => {
    const take = () => { if (commands.length) { onCommand = null; resolve(commands.shift()); } };
    onCommand = take; take();
  });
}

const dl = new DirectLine({
  token: opts.token, secret: opts.secret, domain: opts.domain,
  webSocket: opts.webSocket !== false, pollingInterval: 200, timeout: opts.clientTimeout || 5000,
});
const seen = [];        // every activity delivered to the app, in order
const statuses = [];
let waiters = [];
const check = () => { waiters = waiters.filter((w) => !w()); };
dl.connectionStatus$.subscribe((s) => { statuses.push(s); out({ event: 'status', status: s }); check(); });
dl.activity$.subscribe((a) => {
  seen.push(a);
  out({ event: 'activity', id: a.id, type: a.type, from: a.from && a.from.id, text: a.text, replyToId: a.replyToId });
  check();
}, (err) => out({ event: 'activityError', error: String(err && err.message || err) }));

function until(pred, what, ms = 30000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms);
    const w = () => { if (pred()) { clearTimeout(t); resolve(); return true; } return false; };
    if (!w()) waiters.push(w);
  });
}
function post(text) {
  return new Promise((resolve, reject) => {
    dl.postActivity({ type: 'message', from: { id: opts.userId || 'dl_user1', name: 'Test User' }, text })
      .subscribe((id) => (id === 'retry' ? reject(new Error('post answered retry')) : resolve(id)),
        (err) => reject(Object.assign(new Error('post failed: ' + (err && err.status)), { status: err && err.status })));
  });
}
const has = (id) => seen.some((a) => a.id === id);
const replyTo = (id) => seen.find((a) => a.replyToId === id && a.text && a.text.startsWith('echo:'));
const counts = () => { const m = {}; for (const a of seen) m[a.id] = (m[a.id] || 0) + 1; return m; };
const duplicates = () => Object.entries(counts()).filter(([, n]) => n > 1).map(([id]) => id);

async function exchange(text) {
  const id = await post(text);
  await until(() => has(id) && replyTo(id), 'the echo of ' + id + ' and the bot reply');
  return { id, reply: replyTo(id).text, echo: seen.find((a) => a.id === id).text };
}

(async () => {
  await until(() => statuses.includes(2), 'Online', 20000);
  const result = { ok: true, scenario: opts.scenario };
  switch (opts.scenario) {
    case 'websocket':
    case 'polling':
      result.first = await exchange('hello ' + opts.scenario);
      break;
    case 'reconnect': {
      result.first = await exchange('before the drop');
      out({ event: 'ready-for-drop', count: seen.length });
      await nextCommand(); // the test dropped the socket and added activities while we were away
      const expect = Number(opts.expectAfterDrop || 0);
      const before = result.first ? seen.length : 0;
      await until(() => seen.length >= before + expect, expect + ' activities sent while disconnected', 40000);
      result.second = await exchange('after the reconnect');
      break;
    }
    case 'sequence': { // opts.count exchanges, one after the other
      result.exchanges = [];
      for (let i = 0; i < Number(opts.count || 3); i++) result.exchanges.push(await exchange('message ' + i));
      break;
    }
    case 'refresh': {
      const old = dl.token;
      const fresh = await new Promise((resolve, reject) => dl.refreshToken().subscribe(resolve, reject));
      dl.token = fresh; // what DirectLine's refresh loop does with the answer
      result.refreshed = fresh !== old && typeof fresh === 'string' && fresh.split('.').length === 3;
      result.first = await exchange('with a refreshed token');
      break;
    }
    case 'expired': {
      result.first = await exchange('before expiry');
      await new Promise((r) => setTimeout(r, opts.waitMs || 3000));
      // On 403 DirectLineJS sets ExpiredToken and answers the post with "retry" (catchPostError).
      try { await post('after expiry'); result.postAfterExpiry = 'accepted'; } catch (e) { result.postAfterExpiry = e.status || e.message; }
      await until(() => statuses.includes(3), 'ExpiredToken status', 10000);
      break;
    }
    default:
      fail('unknown scenario ' + opts.scenario);
  }
  result.statuses = statuses;
  result.ids = seen.map((a) => a.id);
  result.duplicates = duplicates();
  dl.end();
  out({ result });
  process.exit(0);
})().catch((e) => fail(e.message));
