// Drives botframework-webchat (npm) in headless Chromium via puppeteer-core, for the Go interop
// tests. Usage: node webchat.js '{"pageUrl":"http://127.0.0.1:…/","text":"…"}'. The page renders
// Web Chat against the bridge's Direct Line server and exposes its redux store as window.store.
// Prints one JSON line: {"result":{…}}. Bounded in time; exits by itself.
'use strict';
const { runWebChat, send } = require('./browser');

const opts = JSON.parse(process.argv[2] || '{}');

runWebChat(opts, async (page) => {
  const text = opts.text || 'hello from web chat';
  await send(page, text);
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
  return { activities: state, sendFailedShown: /send failed/i.test(bodyText) };
});
