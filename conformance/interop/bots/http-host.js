// http-host.js: what the harness's bots share to run a botbuilder CloudAdapter on node's own
// http server (no express): the server itself, an express-style response for CloudAdapter.process
// and a bounded JSON body reader.
'use strict';

const http = require('http');

const MAX_BODY = 1 << 20;

// adaptResponse gives node's ServerResponse the express-style methods CloudAdapter.process calls.
function adaptResponse(res) {
    return {
        socket: res.socket,
        header(name, value) {
            res.setHeader(name, value);
        },
        status(code) {
            res.statusCode = code;
        },
        send(body) {
            if (body === undefined || body === null) {
                return;
            }
            if (typeof body === 'string' || Buffer.isBuffer(body)) {
                if (!res.hasHeader('content-type')) {
                    res.setHeader('content-type', 'text/plain; charset=utf-8');
                }
                res.write(body);
            } else {
                res.setHeader('content-type', 'application/json; charset=utf-8');
                res.write(JSON.stringify(body));
            }
        },
        end() {
            res.end();
        },
    };
}

function readJSON(req) {
    return new Promise((resolve, reject) => {
        let size = 0;
        const chunks = [];
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size > MAX_BODY) {
                reject(new Error('body too large'));
                req.destroy();
                return;
            }
            chunks.push(chunk);
        });
        req.on('end', () => {
            try {
                resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            } catch (err) {
                resolve(undefined); // CloudAdapter answers 400 for a body that is not an object
            }
        });
        req.on('error', reject);
    });
}

// serve runs bot behind adapter at POST /api/messages on 127.0.0.1:PORT (0: a free port), prints
// "listening <port>" (and with LOG_TRACEPARENT set, {"traceparent":…,"type":…} per activity), and stops on SIGTERM, SIGINT, or (EXIT_ON_STDIN_END set) when the parent
// test process goes away and its end of stdin closes.
function serve(adapter, bot) {
    const server = http.createServer(async (req, res) => {
        const { ok, body } = await readMessages(req, res);
        if (!ok) return;
        if (process.env.LOG_TRACEPARENT && body && typeof body === 'object') {
            // For the tracing test: the W3C trace context the channel sent with the activity.
            console.log(JSON.stringify({ traceparent: req.headers.traceparent || '', type: body.type }));
        }
        try {
            await adapter.process({ body, headers: req.headers, method: req.method }, adaptResponse(res), (context) =>
                bot.run(context),
            );
        } catch (err) {
            console.error(`process: ${err && err.message}`);
            if (!res.headersSent) res.statusCode = 500;
            res.end();
        }
    });
    server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
        console.log(`listening ${server.address().port}`);
    });
    stopWith(server);
}

// readMessages reads a request to /api/messages: its JSON body for a POST (undefined for
// another method). Another path is answered 404 and a body that cannot be read 413; ok is then
// false and the request is done.
async function readMessages(req, res) {
    if (new URL(req.url, 'http://localhost').pathname !== '/api/messages') {
        res.statusCode = 404;
        res.end();
        return { ok: false };
    }
    try {
        return { ok: true, body: req.method === 'POST' ? await readJSON(req) : undefined };
    } catch (err) {
        res.statusCode = 413;
        res.end();
        return { ok: false };
    }
}

// stopWith ends the process with server: on SIGTERM or SIGINT, and, with EXIT_ON_STDIN_END, when
// the Go test that started it closes its stdin (a harness that dies takes its peers along).
function stopWith(server) {
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (process.env.EXIT_ON_STDIN_END) {
        process.stdin.on('end', stop);
        process.stdin.resume();
    }
}

module.exports = { adaptResponse, readJSON, readMessages, serve, stopWith };
