'use strict';
// Container healthcheck: GET /api/health on the port this replica listens on.
const fs = require('fs');
const http = require('http');
let port;
try { port = parseInt(fs.readFileSync('/tmp/backend.port', 'utf8'), 10); } catch (e) { process.exit(1); }
const req = http.get({ host: process.env.BIND_ADDRESS || '127.0.0.1', port, path: '/api/health', timeout: 3000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => { req.destroy(); process.exit(1); });
req.on('error', () => process.exit(1));
