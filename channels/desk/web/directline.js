// A small Direct Line 3.0 client: start or resume a conversation, stream activities over the
// websocket (replaying from the last watermark after a drop or a page reload), post activities.
// No framework. Used by the sandbox customer page.
'use strict';
(function (global) {
  class DirectLine {
    constructor({ domain, token, conversationId, watermark, onActivity, onStatus }) {
      this.domain = domain.replace(/\/$/, '');
      this.token = token;
      this.conversationId = conversationId || '';
      this.watermark = watermark || '';
      this.onActivity = onActivity;
      this.onStatus = onStatus || (() => {});
      this.seen = new Set();
      this.closed = false;
      this.attempt = 0;
    }

    async call(method, path, body) {
      const res = await fetch(this.domain + path, {
        method,
        headers: { Authorization: 'Bearer ' + this.token, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) {
        const err = new Error((data.error && data.error.message) || res.statusText);
        err.status = res.status;
        err.code = data.error && data.error.code;
        throw err;
      }
      return data;
    }

    // start opens a new conversation, or resumes this.conversationId from this.watermark.
    async start() {
      this.onStatus('connecting');
      let conv;
      if (this.conversationId) {
        conv = await this.call('GET', '/conversations/' + encodeURIComponent(this.conversationId) +
          '?watermark=' + encodeURIComponent(this.watermark));
      } else {
        conv = await this.call('POST', '/conversations', {});
      }
      this.conversationId = conv.conversationId;
      if (conv.token) this.token = conv.token;
      this.connect(conv.streamUrl);
      this.refreshTimer = setInterval(() => this.refresh(), 10 * 60 * 1000);
    }

    async refresh() {
      try { this.token = (await this.call('POST', '/tokens/refresh')).token; } catch (e) { /* reconnect handles expiry */ }
    }

    connect(streamUrl) {
      const ws = new WebSocket(streamUrl);
      this.ws = ws;
      ws.onopen = () => { this.attempt = 0; this.onStatus('online'); };
      ws.onmessage = (ev) => {
        if (!ev.data) return; // keep-alive
        let set;
        try { set = JSON.parse(ev.data); } catch (e) { return; }
        for (const a of set.activities || []) {
          if (a.id && this.seen.has(a.id)) continue; // exactly once, even across reconnects
          if (a.id) this.seen.add(a.id);
          this.onActivity(a);
        }
        if (set.watermark) this.watermark = set.watermark;
      };
      ws.onclose = () => {
        if (this.closed) return;
        this.onStatus('reconnecting');
        const delay = Math.min(15000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
        setTimeout(() => this.reconnect(), delay);
      };
    }

    async reconnect() {
      if (this.closed) return;
      try {
        const conv = await this.call('GET', '/conversations/' + encodeURIComponent(this.conversationId) +
          '?watermark=' + encodeURIComponent(this.watermark));
        if (conv.token) this.token = conv.token;
        this.connect(conv.streamUrl);
      } catch (e) {
        if (e.status === 403 || e.status === 404) { this.onStatus('ended'); return; }
        this.onStatus('reconnecting');
        setTimeout(() => this.reconnect(), Math.min(15000, 500 * 2 ** this.attempt++));
      }
    }

    post(activity) {
      return this.call('POST', '/conversations/' + encodeURIComponent(this.conversationId) + '/activities', activity);
    }

    end() {
      this.closed = true;
      clearInterval(this.refreshTimer);
      if (this.ws) this.ws.close();
    }
  }
  global.SandboxDirectLine = DirectLine;
})(window);
