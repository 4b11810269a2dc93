// offline-directline.js: starts offline-directline (npm 1.3.1, ryanvolum/offline-directline), an
// open-source Direct Line emulator, as a peer for the Go conformance tests.
//
// offline-directline's own launcher (dist/cmdutil.js -> initializeRoutes) listens on every
// interface and starts a cleanup timer; this one mounts the same express router (getRouter) on
// 127.0.0.1 only. Its routes, as its source (src/bridge.ts) has them:
//   client: POST /directline/conversations, GET|POST /directline/conversations/:id/activities
//           (no /v3 prefix, no tokens, no websocket: /v3/directline/.../stream never answers)
//   bot:    POST /v3/conversations/:id/activities[/:activityId]
// The router's serviceUrl (what the bot replies to) is http://127.0.0.1:<port>, so the port is
// bound before the router is mounted.
//
// Environment:
//   PORT     port on 127.0.0.1; 0 (default) picks a free one. Prints "listening <port>".
//   BOT_URL  the bot's messaging endpoint, e.g. http://127.0.0.1:3978/api/messages (required).
'use strict';

const path = require('path');

const botUrl = process.env.BOT_URL;
if (!botUrl) {
    console.error('BOT_URL is required');
    process.exit(2);
}
// The express offline-directline itself resolves (it pins 4.16.3).
const odlMain = require.resolve('offline-directline');
const express = require(require.resolve('express', { paths: [path.dirname(odlMain)] }));
const { getRouter } = require(odlMain);

const app = express();
const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    const port = server.address().port;
    app.use(getRouter(`http://127.0.0.1:${port}`, botUrl));
    console.log(`listening ${port}`);
});
server.on('error', (err) => {
    console.error(err);
    process.exit(1);
});
// The harness that started us closes stdin when it goes away; take the server down with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
