// The sandbox's Web Chat page: botframework-webchat against the bridge's Direct Line server,
// with a token from the sandbox's token endpoint (as a website's own would give it). Two
// additions to Web Chat's defaults, both through its documented extension points:
//   - every line that is not the customer's shows who sent it (activity from.name: the bot, an
//     agent, the contact center), through an activity middleware;
//   - the end of the conversation (an endOfConversation activity, which Web Chat does not
//     render) shows as a notice, and the page stops offering to send.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const status = (state, text) => { $('status').dataset.state = state; $('status').textContent = text; };

  // el builds a React element like the one Web Chat's own renderer returned (same $$typeof):
  // the bundle keeps React to itself, and a label needs no more than a div.
  function el(like, type, props, children) {
    return { $$typeof: like.$$typeof, type, key: props.key || null, ref: null,
      props: Object.assign({}, props, { key: undefined, children }), _owner: null, _store: {} };
  }

  // roleOf reads the bridge's marking of who speaks (channelData.bfbridgeRole: agent, system).
  const roleOf = (a) => (a.channelData && a.channelData.bfbridgeRole) || (a.from && a.from.role === 'user' ? 'user' : 'bot');

  let tag = null; // the $$typeof of Web Chat's elements, learnt from the first one rendered

  const activityMiddleware = () => (next) => (...setup) => {
    const activity = setup[0] && setup[0].activity;
    if (activity && activity.type === 'endOfConversation') {
      return tag && (() => el({ $$typeof: tag }, 'div', { className: 'bfbridge-end', role: 'status' }, 'The conversation has ended.'));
    }
    const render = next(...setup);
    const role = activity ? roleOf(activity) : 'user';
    const name = activity && activity.from && activity.from.name;
    if (!render || role === 'user' || !name) return render;
    return (...args) => {
      const inner = render(...args);
      if (!inner || !inner.$$typeof) return inner;
      tag = inner.$$typeof;
      return el(inner, 'div', { className: 'bfbridge-from', 'data-role': role }, [
        el(inner, 'div', { className: 'bfbridge-name', key: 'name' }, name),
        Object.assign({}, inner, { key: 'activity' }),
      ]);
    };
  };

  function ended(store) {
    status('ended', 'conversation ended');
    store.dispatch({ type: 'WEB_CHAT/SET_NOTIFICATION', payload: { id: 'ended', level: 'info', message: 'The conversation has ended.' } });
    document.body.dataset.ended = 'true';
  }

  async function start() {
    if (!window.WebChat) {
      status('error', 'Web Chat could not be loaded from its CDN (https://cdn.botframework.com). Check your connection.');
      return;
    }
    let t;
    try {
      const res = await fetch('/sandbox/api/customer-token', { method: 'POST' });
      if (!res.ok) throw new Error('the token endpoint answered ' + res.status);
      t = await res.json();
    } catch (e) {
      status('error', 'Cannot start a chat: ' + e.message + '.');
      return;
    }
    const store = window.WebChat.createStore({}, ({ dispatch }) => (next) => (action) => {
      if (action.type === 'DIRECT_LINE/INCOMING_ACTIVITY' && action.payload.activity.type === 'endOfConversation') {
        setTimeout(() => ended(window.store), 0);
      }
      if (action.type === 'DIRECT_LINE/CONNECT_FULFILLED') status('online', 'connected');
      return next(action);
    });
    window.store = store;
    window.WebChat.renderWebChat({
      directLine: window.WebChat.createDirectLine({ token: t.token, domain: location.origin + '/v3/directline' }),
      store, userID: t.userId, username: t.userName, activityMiddleware,
      styleOptions: { botAvatarInitials: 'B', userAvatarInitials: 'You', hideUploadButton: true },
    }, $('webchat'));
  }
  start();
})();
