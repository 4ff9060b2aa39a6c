// Run inside a Node container with `node -e`: the runbook's process.memoryUsage() (of this short-lived
// process), the V8 heap limit (the same for the server unless its flags differ), and the serving process's
// own heap and RSS from its /metrics (port read from EM_PORT_FILE). Prints one JSON object.
const fs = require('fs');
const http = require('http');
const v8 = require('v8');
const out = { exec_process: process.memoryUsage(), heap_size_limit: v8.getHeapStatistics().heap_size_limit,
  node_version: process.version, node_options: process.env.NODE_OPTIONS ? 'set' : 'unset' };
let port = null;
try { port = parseInt(fs.readFileSync(process.env.EM_PORT_FILE || '/tmp/backend.port', 'utf8'), 10); } catch (e) { /* no port file */ }
if (!port) { out.server_error = 'no port file'; console.log(JSON.stringify(out)); process.exit(0); }
const req = http.get({ host: process.env.BIND_ADDRESS || '127.0.0.1', port, path: process.env.EM_METRICS_PATH || '/metrics', timeout: 3000 }, (res) => {
  let body = '';
  res.on('data', (d) => { body += d; });
  res.on('end', () => {
    const g = (n) => { const m = body.match(new RegExp('^' + n + ' (\\S+)$', 'm')); return m ? Number(m[1]) : null; };
    out.server = { port, heap_used_bytes: g('nodejs_heap_used_bytes'), heap_total_bytes: g('nodejs_heap_total_bytes'),
      rss_bytes: g('process_resident_memory_bytes') };
    console.log(JSON.stringify(out));
  });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => { out.server_error = e.message; console.log(JSON.stringify(out)); });
