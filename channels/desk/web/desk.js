// The sandbox agent desk: sign in by name (checked against the sandbox's agents, remembered
// across reloads), set presence, receive offered conversations live over a websocket with the
// time left to answer, accept or decline, read the bot transcript (with times, and the bot's
// note for the agent apart from what the customer saw) and the context variables, reply,
// transfer, end.
'use strict';
(function () {
  const KEY = 'bfbridge.sandbox.agent';
  const $ = (id) => document.getElementById(id);
  let ws, me = null, selected = null, agents = [], skew = 0; // skew: server clock − page clock (ms)
  const convs = new Map(); // id -> conversation view {id, state, queue, customer, context, transcript, answerBy}

  const outbox = []; // commands given while the desk is reconnecting, sent once it is back

  const words = { offered: 'offered to you', active: 'in conversation' };
  const presenceWords = { 'Busy-DND': 'Do not disturb' };
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';

  function connect(name) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + '/sandbox/api/desk?agent=' + encodeURIComponent(name));
    ws.onopen = () => {
      document.body.dataset.conn = 'online';
      while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => {
      if (ws.signedOut) return;
      document.body.dataset.conn = 'offline';
      $('load').textContent = 'disconnected — reconnecting…';
      setTimeout(() => connect(name), 1000);
    };
  }
  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    else outbox.push(msg);
  }

  function showMe(agent) {
    me = agent;
    $('agentName').textContent = me.name;
    $('presence').value = me.presence;
    $('load').textContent = 'load ' + me.load + ' / ' + me.capacity;
  }

  function handle(m) {
    switch (m.type) {
      case 'state':
        showMe(m.agent);
        convs.clear();
        for (const c of m.conversations || []) { convs.set(c.id, c); learnClock(c); }
        fillTransfer(m.queues || [], m.bots || []);
        break;
      case 'agent': // presence or load changed
        showMe(m.agent);
        break;
      case 'conversation': // offered, accepted, updated
        learnClock(m.conversation);
        convs.set(m.conversation.id, Object.assign(convs.get(m.conversation.id) || {}, m.conversation));
        break;
      case 'activity': {
        const c = convs.get(m.conversationId);
        if (c) { c.transcript = (c.transcript || []).concat([m.entry]); }
        break;
      }
      case 'removed':
        convs.delete(m.conversationId);
        if (selected === m.conversationId) selected = null;
        break;
      case 'error':
        showError(m.message);
        break;
    }
    renderList();
    renderDetail();
  }

  function learnClock(c) { if (c.now) skew = new Date(c.now) - Date.now(); }

  function showError(text, keep) {
    $('error').textContent = text;
    $('error').hidden = false;
    clearTimeout(showError.timer);
    if (!keep) showError.timer = setTimeout(() => { $('error').hidden = true; }, 8000);
  }

  function fillTransfer(queues, bots) {
    const sel = $('transferTo');
    sel.innerHTML = '';
    for (const q of queues) sel.append(new Option('Queue ' + q, 'queue:' + q));
    for (const b of bots) sel.append(new Option('Back to the bot (' + b + ')', 'bot:' + b));
  }

  // left is the time left to answer an offer, as m:ss, or '' when none.
  function left(c) {
    if (c.state !== 'offered' || !c.answerBy) return '';
    const s = Math.max(0, Math.round((new Date(c.answerBy) - (Date.now() + skew)) / 1000));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  const subline = (c) => ' · ' + c.queue + ' · ' + (words[c.state] || c.state) + (left(c) ? ' — answer within ' + left(c) : '');
  const countdown = (c) => 'Offered to you — accept within ' + left(c) + ', or it goes to another agent.';

  function renderList() {
    const ul = $('convs');
    ul.innerHTML = '';
    for (const c of convs.values()) {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      li.dataset.state = c.state;
      li.className = (c.id === selected ? 'selected ' : '') + c.state;
      const who = document.createElement('strong');
      who.textContent = c.customer;
      const what = document.createElement('span');
      what.className = 'sub';
      what.textContent = subline(c);
      li.append(who, what);
      li.onclick = () => { selected = c.id; renderList(); renderDetail(); };
      ul.append(li);
    }
    if (!selected && convs.size) { selected = convs.keys().next().value; }
    const empty = $('empty');
    empty.hidden = convs.size > 0 || !me;
    if (me && !convs.size) {
      const p = me.presence;
      empty.textContent = p === 'Available' || p === 'Busy' ? p + ' — waiting for offers.'
        : (presenceWords[p] || p) + ': you get no offers. Set Available to receive conversations.';
    }
  }

  function renderDetail() {
    const c = selected && convs.get(selected);
    $('detail').hidden = !c;
    $('nothing').hidden = !!c || !convs.size;
    if (!c) return;
    $('title').textContent = 'Conversation with ' + c.customer + ' (queue ' + c.queue + ')';
    $('agentNote').textContent = c.note ? 'Note from the bot: ' + c.note : '';
    $('agentNote').hidden = !c.note;
    const offered = c.state === 'offered';
    $('countdown').hidden = !offered;
    $('countdown').textContent = offered ? countdown(c) : '';
    $('accept').hidden = !offered;
    $('decline').hidden = !offered;
    const active = c.state === 'active';
    for (const id of ['transfer', 'transferTo', 'end']) $(id).hidden = !active;
    $('replyText').disabled = !active;
    $('replySend').disabled = !active;
    const tbody = $('context').tBodies[0];
    tbody.innerHTML = '';
    for (const [k, v] of Object.entries(c.context || {})) {
      const tr = tbody.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const t = $('transcript');
    t.innerHTML = '';
    for (const e of c.transcript || []) t.append(line(c, e));
    t.scrollTop = t.scrollHeight;
  }

  // line renders one transcript entry; a label is a name, never a role word.
  function line(c, e) {
    const div = document.createElement('div');
    div.className = 'msg ' + e.role;
    div.dataset.role = e.role;
    const who = document.createElement('span');
    who.className = 'who';
    const label = { customer: c.customer, note: 'Note for you from ' + (e.name || 'the bot') + ' — the customer did not see this',
      system: e.name || 'Contact center', agent: e.name === (me && me.name) ? e.name + ' (you)' : e.name, bot: e.name || 'Bot' }[e.role];
    who.textContent = label || e.name || '';
    const at = document.createElement('time');
    at.className = 'at';
    if (e.at) { at.dateTime = e.at; at.textContent = time(e.at); }
    who.append(' ', at);
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = e.text;
    div.append(who, body);
    return div;
  }

  async function loadAgents() {
    try {
      agents = (await (await fetch('/sandbox/api/agents')).json()).agents || [];
    } catch (e) { agents = []; }
    $('signinHelp').textContent = agents.length ? 'The sandbox\'s agents: ' + agents.map((a) => a.name + ' (' + a.id + ')').join(', ') + '.' : '';
  }

  function find(name) {
    const n = name.toLowerCase();
    return agents.find((a) => a.id.toLowerCase() === n || a.name.toLowerCase() === n);
  }

  function signIn(name) {
    const a = find(name);
    if (!a) {
      showError('There is no agent "' + name + '" in this sandbox. Sign in as one of: ' +
        agents.map((x) => x.name + ' (' + x.id + ')').join(', ') + '.', true);
      localStorage.removeItem(KEY);
      return;
    }
    $('error').hidden = true;
    localStorage.setItem(KEY, a.id);
    $('signin').hidden = true;
    $('signinHelp').hidden = true;
    $('me').hidden = false;
    connect(a.id);
  }

  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('agent').value.trim();
    if (name) signIn(name);
  });
  $('signout').addEventListener('click', () => {
    localStorage.removeItem(KEY);
    if (ws) { ws.signedOut = true; ws.close(); }
    location.href = location.pathname;
  });
  $('presence').addEventListener('change', () => send({ type: 'presence', presence: $('presence').value }));
  for (const id of ['accept', 'decline', 'end']) {
    $(id).addEventListener('click', () => send({ type: id, conversationId: selected }));
  }
  $('transfer').addEventListener('click', () => {
    const [kind, target] = $('transferTo').value.split(/:(.*)/);
    send({ type: 'transfer', conversationId: selected, kind, target });
  });
  $('reply').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('replyText').value.trim();
    if (!text || !selected) return;
    $('replyText').value = '';
    send({ type: 'send', conversationId: selected, text });
  });
  setInterval(() => { // the countdowns, changed in place: the list stays put under the pointer
    for (const li of document.querySelectorAll('#convs li[data-state="offered"]')) {
      const c = convs.get(li.dataset.id);
      if (c) li.querySelector('.sub').textContent = subline(c);
    }
    const c = selected && convs.get(selected);
    if (c && c.state === 'offered') $('countdown').textContent = countdown(c);
  }, 1000);
  loadAgents().then(() => {
    const preset = new URLSearchParams(location.search).get('agent') || localStorage.getItem(KEY);
    if (preset) { $('agent').value = preset; signIn(preset); }
  });
})();
