// Drives the real botframework-directlinejs client (npm) through a handoff to a contact center,
// for the Go interop tests of escalation targets (channels/salesforce). Usage:
//   node dljs-handoff.js '<json options>'
// options: domain, token, userId, agent (the agent's display name), file {name, type, text}.
// Steps: says "hello" and waits for the bot's echo; says "handoff" (the echo bot escalates) and
// prints {"event":"handed-off"}; waits for "<agent> has joined" and for the agent's first
// message; then says "My order is late", uploads the file the way DirectLineJS's
// postMessageWithAttachments does (multipart POST /upload with the token: its own path needs a
// browser's XMLHttpRequest with FormData, which xhr2 lacks) and prints
// {"event":"sent"}; waits for the endOfConversation. Last, {"result":…} with every activity it
// was shown, in order. Every wait is bounded; the process exits by itself.
'use strict';
global.XMLHttpRequest = require('xhr2');
global.WebSocket = require('ws');
const { DirectLine } = require('botframework-directlinejs');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (msg) => { out({ result: { ok: false, error: msg, seen: view() } }); process.exit(1); };
setTimeout(() => fail('overall timeout'), opts.timeoutMs || 90000).unref();

const dl = new DirectLine({ token: opts.token, domain: opts.domain, webSocket: true, timeout: 5000 });
const seen = [];
let waiters = [];
const check = () => { waiters = waiters.filter((w) => !w()); };
dl.connectionStatus$.subscribe(() => check());
dl.activity$.subscribe((a) => {
  seen.push(a);
  out({ event: 'activity', id: a.id, type: a.type, from: a.from && a.from.id, text: a.text });
  check();
}, (err) => out({ event: 'activityError', error: String(err && err.message || err) }));

function view() {
  return seen.map((a) => ({
    id: a.id, type: a.type, from: a.from && a.from.id, name: a.from && a.from.name, text: a.text,
    attachments: (a.attachments || []).map((x) => ({ name: x.name, contentUrl: x.contentUrl, contentType: x.contentType })),
  }));
}
function until(pred, what, ms = 30000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms);
    const w = () => { if (pred()) { clearTimeout(t); resolve(); return true; } return false; };
    if (!w()) waiters.push(w);
  });
}
function post(text) {
  return new Promise((resolve, reject) => {
    dl.postActivity({ type: 'message', from: { id: opts.userId, name: 'Customer' }, text })
      .subscribe((id) => (id === 'retry' ? reject(new Error('post answered retry')) : resolve(id)),
        (err) => reject(new Error('post failed: ' + (err && err.status))));
  });
}
const said = (text) => () => seen.some((a) => a.type === 'message' && a.text === text && a.from.id !== opts.userId);

async function upload(file) {
  const form = new FormData();
  const activity = { type: 'message', from: { id: opts.userId, name: 'Customer' } };
  form.append('activity', new Blob([JSON.stringify(activity)], { type: 'application/vnd.microsoft.activity' }));
  form.append('file', new Blob([file.text], { type: file.type }), file.name);
  const res = await fetch(`${opts.domain}/conversations/${dl.conversationId}/upload?userId=${encodeURIComponent(opts.userId)}`, {
    method: 'POST', headers: { Authorization: `Bearer ${dl.token}` }, body: form,
  });
  if (!res.ok) throw new Error('upload answered ' + res.status);
}

(async () => {
  await until(() => dl.conversationId, 'the conversation', 20000);
  await post('hello');
  await until(said('echo: hello'), 'the echo bot');
  await post('handoff');
  out({ event: 'handed-off' });
  await until(said(`${opts.agent} has joined`), 'the agent joining', 40000);
  await until(() => seen.some((a) => a.type === 'message' && a.from.id.startsWith('salesforce:agent')), 'the agent\'s first message');
  await post('My order is late');
  await upload(opts.file);
  out({ event: 'sent' });
  await until(() => seen.some((a) => a.type === 'endOfConversation'), 'the end', 40000);
  dl.end();
  out({ result: { ok: true, seen: view() } });
  process.exit(0);
})().catch((e) => fail(e.message));
