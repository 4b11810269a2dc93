// http-host.js: what the harness's bots share to run a botbuilder CloudAdapter on node's own
// http server (no express): an express-style response for CloudAdapter.process and a bounded
// JSON body reader.
'use strict';

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

module.exports = { adaptResponse, readJSON };
