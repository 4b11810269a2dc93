// The sandbox agent desk: sign in by name, set presence, receive offered conversations live over
// a websocket, accept or decline, read the bot transcript and the context variables, reply,
// transfer, end.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let ws, me = null, selected = null;
  const convs = new Map(); // id -> conversation view {id, state, queue, context, transcript, offered}

  const outbox = []; // commands given while the desk is reconnecting, sent once it is back

  function connect(name) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + location.host + '/sandbox/api/desk?agent=' + encodeURIComponent(name));
    ws.onopen = () => {
      document.body.dataset.conn = 'online';
      while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => {
      document.body.dataset.conn = 'offline';
      $('load').textContent = 'disconnected — reconnecting…';
      setTimeout(() => connect(name), 1000);
    };
  }
  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    else outbox.push(msg);
  }

  function handle(m) {
    switch (m.type) {
      case 'state':
        me = m.agent;
        $('agentName').textContent = me.name;
        $('presence').value = me.presence;
        $('load').textContent = 'load ' + me.load + ' / ' + me.capacity;
        convs.clear();
        for (const c of m.conversations || []) convs.set(c.id, c);
        fillTransfer(m.queues || [], m.bots || []);
        break;
      case 'agent': // presence or load changed
        me = m.agent;
        $('presence').value = me.presence;
        $('load').textContent = 'load ' + me.load + ' / ' + me.capacity;
        break;
      case 'conversation': // offered, accepted, updated
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
        $('error').textContent = m.message;
        $('error').hidden = false;
        setTimeout(() => { $('error').hidden = true; }, 8000);
        break;
    }
    renderList();
    renderDetail();
  }

  function fillTransfer(queues, bots) {
    const sel = $('transferTo');
    sel.innerHTML = '';
    for (const q of queues) sel.append(new Option('queue: ' + q, 'queue:' + q));
    for (const b of bots) sel.append(new Option('bot: ' + b, 'bot:' + b));
  }

  function renderList() {
    const ul = $('convs');
    ul.innerHTML = '';
    for (const c of convs.values()) {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      li.dataset.state = c.state;
      li.className = (c.id === selected ? 'selected ' : '') + c.state;
      li.textContent = (c.customer || 'customer') + ' — ' + c.queue + ' — ' + c.state;
      li.onclick = () => { selected = c.id; renderList(); renderDetail(); };
      ul.append(li);
    }
    if (!selected && convs.size) { selected = convs.keys().next().value; }
  }

  function renderDetail() {
    const c = selected && convs.get(selected);
    $('detail').hidden = !c;
    if (!c) return;
    $('title').textContent = 'Conversation with ' + (c.customer || 'customer') + ' (queue ' + c.queue + ')';
    $('agentNote').textContent = c.note ? 'Note from the bot: ' + c.note : '';
    $('agentNote').hidden = !c.note;
    const offered = c.state === 'offered';
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
    for (const e of c.transcript || []) {
      const div = document.createElement('div');
      div.className = 'msg ' + e.role;
      div.dataset.role = e.role;
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = e.name || e.role;
      const body = document.createElement('span');
      body.className = 'text';
      body.textContent = e.text;
      div.append(who, body);
      t.append(div);
    }
    t.scrollTop = t.scrollHeight;
  }

  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('agent').value.trim();
    if (!name) return;
    $('signin').hidden = true;
    $('me').hidden = false;
    connect(name);
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
  const preset = new URLSearchParams(location.search).get('agent');
  if (preset) { $('agent').value = preset; $('signin').requestSubmit(); }
})();
