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

  function save() {
    localStorage.setItem(KEY, JSON.stringify({ conversationId: dl.conversationId, token: dl.token, watermark: dl.watermark, userId: state.userId }));
  }

  function setStatus(s) {
    $('status').dataset.state = s;
    $('status').textContent = { connecting: 'connecting…', online: 'connected', reconnecting: 'reconnecting…', ended: 'conversation ended' }[s] || s;
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
      el.classList.remove('sending');
      el.dataset.id = a.id;
      save();
      return;
    }
    const role = roleOf(a);
    const name = role === 'customer' ? 'You' : (a.from && a.from.name) || role;
    addLine(role, a.text || '(attachment)', a.id, name);
    save();
  }

  function addLine(role, text, id, name) {
    const el = document.createElement('div');
    el.className = 'msg ' + role;
    el.dataset.role = role;
    if (id) el.dataset.id = id;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = name || role;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    el.append(who, body);
    transcript.append(el);
    transcript.scrollTop = transcript.scrollHeight;
    return el;
  }

  async function begin() {
    if (!state || !state.token) {
      const res = await fetch('/sandbox/api/customer-token', { method: 'POST' });
      if (!res.ok) { setStatus('failed to get a token'); return; }
      const t = await res.json();
      state = { token: t.token, userId: t.userId, conversationId: '', watermark: '' };
    }
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
      setStatus('error: ' + e.message);
    }
  }

  $('sendbox').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    const clientActivityID = Math.random().toString(36).slice(2) + Date.now().toString(36);
    const el = addLine('customer', text, '', 'You');
    el.classList.add('sending');
    pending.set(clientActivityID, el);
    try {
      await dl.post({ type: 'message', text, from: { id: state.userId, name: 'Customer' }, channelData: { clientActivityID },
        locale: navigator.language, localTimestamp: new Date().toISOString(), localTimezone: Intl.DateTimeFormat().resolvedOptions().timeZone });
    } catch (e) {
      el.classList.add('failed');
      el.title = 'not sent: ' + e.message;
    }
  });
  $('restart').addEventListener('click', () => { if (dl) dl.end(); localStorage.removeItem(KEY); location.reload(); });
  begin();
})();
