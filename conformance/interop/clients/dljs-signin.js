// dljs-signin.js: the real botframework-directlinejs client as the customer of a bot that signs
// its user in (the Go sign-in tests). Usage: node dljs-signin.js '<json options>' with
// {domain, token, userId}. It prints one JSON object per line: {"event":"status"} as the
// connection changes, {"event":"activity", …} for every activity, with its attachments, and
// {"event":"posted","id"} / {"event":"postFailed"}. Lines on stdin are commands: "say <text>"
// posts a message. It exits when stdin closes or after timeoutMs.
'use strict';
global.XMLHttpRequest = require('xhr2');
global.WebSocket = require('ws');
const readline = require('readline');
const { DirectLine } = require('botframework-directlinejs');

const opts = JSON.parse(process.argv[2] || '{}');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
setTimeout(() => process.exit(2), opts.timeoutMs || 120000).unref();

const dl = new DirectLine({ token: opts.token, domain: opts.domain, webSocket: true, timeout: 10000 });
dl.connectionStatus$.subscribe((s) => out({ event: 'status', status: s }));
dl.activity$.subscribe((a) => out({
  event: 'activity', id: a.id, type: a.type, name: a.name, from: a.from && a.from.id, text: a.text,
  attachments: a.attachments || [],
}), (err) => out({ event: 'activityError', error: String(err && err.message || err) }));

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    const m = /^say (.*)$/.exec(line.trim());
    if (!m) return;
    dl.postActivity({ type: 'message', from: { id: opts.userId, name: 'Customer' }, text: m[1] })
      .subscribe((id) => out({ event: 'posted', id, text: m[1] }), (err) => out({ event: 'postFailed', status: err && err.status }));
  })
  .on('close', () => process.exit(0));
