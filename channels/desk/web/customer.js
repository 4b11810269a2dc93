// The sandbox customer page: shows bot, agent and system messages distinctly, resumes the same
// conversation after a reload or a bridge restart (conversation id, token and watermark are kept
// in localStorage), and says when the conversation has ended.
'use strict';
(function () {
  const KEY = 'bfbridge.sandbox.customer';
  const $ = (id) => document.getElementById(id);
  const transcript = $('transcript');
  const input = $('input');
  const send = $('send');
  let dl;
  let state = JSON.parse(localStorage.getItem(KEY) || 'null');
  const pending = new Map(); // clientActivityID -> element
  // The unsent area: the customer's messages the bridge does not have yet, always last. The
  // conversation's lines go above it, in the order the bridge gives them.
  const unsentEl = document.createElement('div');
  unsentEl.id = 'unsent';
  transcript.append(unsentEl);

  // save keeps the conversation, and the messages not sent yet, across a reload.
  function save() {
    localStorage.setItem(KEY, JSON.stringify({ conversationId: dl.conversationId, token: dl.token, watermark: dl.watermark,
      userId: state.userId, userName: state.userName,
      unsent: outbox.filter((m) => !m.done).map((m) => ({ text: m.text, clientActivityID: m.clientActivityID })) }));
  }

  function setStatus(s) {
    $('status').dataset.state = s;
    if (s === 'online') setTimeout(flush, 0);
    $('status').textContent = { connecting: 'connecting…', online: 'connected', reconnecting: 'reconnecting… (you can keep typing)', ended: 'conversation ended', error: 'not connected' }[s] || s;
    const usable = s === 'online' || s === 'reconnecting';
    input.disabled = !usable;
    send.disabled = !usable;
  }

  // roleOf tells who sent an activity: the customer, a human agent, the system (automated
  // messages of the contact center) or the bot.
  function roleOf(a) {
    const cd = a.channelData || {};
    if (a.from && a.from.id === state.userId) return 'customer';
    if (cd.bfbridgeRole === 'agent') return 'agent';
    if (cd.bfbridgeRole === 'system') return 'system';
    return 'bot';
  }

  function render(a) {
    if (a.type === 'endOfConversation') {
      addLine('system', 'The conversation has ended.', 'ended');
      setStatus('ended');
      dl.end();
      save();
      return;
    }
    if (a.type !== 'message' || (!a.text && !(a.attachments || []).length)) return;
    const cid = a.channelData && a.channelData.clientActivityID;
    if (cid && pending.has(cid)) { // our own message came back with its server id: sent
      const el = pending.get(cid);
      pending.delete(cid);
      transcript.insertBefore(el, unsentEl); // from the unsent area into its place in the conversation
      for (const m of outbox) if (m.clientActivityID === cid) m.done = true; // no need to post it again
      el.classList.remove('sending');
      el.dataset.id = a.id;
      save();
      return;
    }
    const role = roleOf(a);
    const name = role === 'customer' ? 'You' : (a.from && a.from.name) || { agent: 'Agent', system: 'Contact center', bot: 'Assistant' }[role];
    addLine(role, a.text || '(attachment)', a.id, name, a.timestamp);
    save();
  }

  function addLine(role, text, id, name, at) {
    const el = document.createElement('div');
    el.className = 'msg ' + role;
    el.dataset.role = role;
    if (id) el.dataset.id = id;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = name || '';
    const when = document.createElement('time');
    when.className = 'at';
    const t = at ? new Date(at) : new Date();
    when.dateTime = t.toISOString();
    when.textContent = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    who.append(' ', when);
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    el.append(who, body);
    transcript.insertBefore(el, unsentEl);
    transcript.scrollTop = transcript.scrollHeight;
    return el;
  }

  async function begin() {
    if (!state || !state.token) {
      let res;
      try {
        res = await fetch('/sandbox/api/customer-token', { method: 'POST' });
      } catch (e) { // the bridge is away: try again
        setStatus('reconnecting');
        setTimeout(begin, 2000);
        return;
      }
      if (!res.ok) { setStatus('error'); showBanner('The chat service is unavailable right now (it answered ' + res.status + '). Please try again in a few minutes.'); return; }
      const t = await res.json();
      state = { token: t.token, userId: t.userId, userName: t.userName, conversationId: '', watermark: '' };
    }
    for (const m of (state.unsent || []).splice(0)) queue(m.text, m.clientActivityID); // typed before a reload
    dl = new SandboxDirectLine({
      domain: location.origin + '/v3/directline', token: state.token,
      conversationId: state.conversationId, watermark: '', // replay everything to rebuild the transcript
      onActivity: render, onStatus: setStatus,
    });
    try {
      await dl.start();
      save();
    } catch (e) {
      if (state.conversationId && (e.status === 403 || e.status === 404 || e.status === 401)) { // expired or gone: start over
        localStorage.removeItem(KEY);
        state = null;
        return begin();
      }
      if (retryable(e)) { // the bridge is away (restarting): try again, the page keeps what it has
        setStatus('reconnecting');
        setTimeout(begin, 2000);
        return;
      }
      setStatus('error');
      showBanner(e.status === 502 || e.status === 504
        ? 'The service is unavailable right now: the chat cannot be reached. Please try again in a few minutes.'
        : 'The chat could not start: ' + e.message + '.');
    }
  }

  // The outbox: messages the customer sent, in order, until the bridge has them. A message
  // typed while the page reconnects (or whose post found the bridge down) waits here and goes
  // when the connection is back; its clientActivityID makes a repeated post harmless (the
  // server keeps the first).
  const outbox = [];
  let flushing = false;

  $('sendbox').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    queue(text, Math.random().toString(36).slice(2) + Date.now().toString(36));
  });

  // queue shows a message as sending and puts it in the outbox.
  function queue(text, clientActivityID) {
    const el = addLine('customer', text, '', 'You');
    unsentEl.append(el); // below the conversation until the bridge has it
    el.classList.add('sending');
    pending.set(clientActivityID, el);
    outbox.push({ text, clientActivityID, el });
    if (dl) save();
    flush();
  }

  async function flush() {
    if (flushing || !dl || $('status').dataset.state !== 'online') return;
    flushing = true;
    try {
      while (outbox.length) {
        const m = outbox[0];
        if (m.done) { outbox.shift(); save(); continue; }
        try {
          await dl.post({ type: 'message', text: m.text, from: { id: state.userId, name: state.userName || 'Customer' },
            channelData: { clientActivityID: m.clientActivityID }, locale: navigator.language,
            localTimestamp: new Date().toISOString(), localTimezone: Intl.DateTimeFormat().resolvedOptions().timeZone });
          outbox.shift();
          save();
          note(m.el, '');
        } catch (e) {
          if (retryable(e)) { // the bridge is away: keep it, and send it when the connection is back
            m.el.classList.add('waiting');
            note(m.el, 'Not sent yet: the connection was lost. It will be sent when the chat reconnects.');
            setTimeout(flush, 3000);
            return;
          }
          outbox.shift();
          pending.delete(m.clientActivityID);
          m.el.classList.remove('sending');
          m.el.classList.add('failed');
          note(m.el, whyNotSent(e));
        }
      }
    } finally {
      flushing = false;
    }
  }

  // retryable: no answer at all, or the bridge said to come back (restarting, overloaded).
  const retryable = (e) => !e.status || e.status === 429 || e.status === 500 || e.status === 503;

  // whyNotSent says, in words, why a message was refused.
  function whyNotSent(e) {
    switch (e.status) {
      case 502: case 504:
        showBanner('The service is unavailable right now: our assistant cannot be reached. Please try again in a few minutes.');
        return 'Not delivered: the service is unavailable right now. Please try again in a few minutes.';
      case 401: case 403:
        return 'Not sent: this chat session has expired. Select "New chat" to start again.';
      case 404:
        return 'Not sent: this conversation is closed. Select "New chat" to start again.';
      case 400: case 413:
        return 'Not sent: ' + (e.message || 'the message was refused') + '.';
    }
    return 'Not sent: ' + (e.message || 'the chat service refused it') + '.';
  }

  // note writes a line under a message (why it waits or failed); '' removes it.
  function note(el, text) {
    let n = el.querySelector('.error-line');
    if (!text) { if (n) n.remove(); el.classList.remove('waiting'); return; }
    if (!n) { n = document.createElement('span'); n.className = 'error-line'; el.append(n); }
    n.textContent = text;
  }

  function showBanner(text) {
    $('banner').textContent = text;
    $('banner').hidden = false;
  }

  $('restart').addEventListener('click', () => { if (dl) dl.end(); localStorage.removeItem(KEY); location.reload(); });
  begin();
})();
