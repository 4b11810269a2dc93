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
const { runWebChat, send } = require('./browser');

const opts = JSON.parse(process.argv[2] || '{}');

runWebChat(opts, async (page) => {
  await send(page, opts.text || 'login');
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
  return { sso, bodyText, activities, cardShown: bodyText.includes(opts.cardText || 'Please sign in') };
});
