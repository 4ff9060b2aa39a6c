'use strict';
// Equipment Marketplace API stand-in for the reference stack.
// Reads DATABASE_URL, REDIS_URL and JWT_SECRET; listens on 127.0.0.1 on the first free port of
// BACKEND_PORT_FIRST..BACKEND_PORT_LAST so several replicas can run with host networking.
const crypto = require('crypto');
const http = require('http');
const express = require('express');
const { Pool } = require('pg');
const { createClient } = require('redis');

const VERSION = process.env.APP_VERSION || '1.0.0';
const BIND = process.env.BIND_ADDRESS || '127.0.0.1';
const FIRST = parseInt(process.env.BACKEND_PORT_FIRST || '53000', 10);
const LAST = parseInt(process.env.BACKEND_PORT_LAST || String(FIRST), 10);
const BROKEN_HEALTH = process.env.BROKEN_HEALTH === '1';
const FAULTS = process.env.ENABLE_FAULT_ENDPOINTS === '1';

function log(level, msg) {
  process.stdout.write(`${new Date().toISOString()} ${level} ${msg}\n`);
}

const missing = ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET'].filter((k) => !process.env[k]);
if (missing.length) {
  log('ERROR', `missing required environment variable(s): ${missing.join(', ')}; refusing to start`);
  process.exit(78);
}
const JWT_SECRET = process.env.JWT_SECRET;

const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: 10,
  connectionTimeoutMillis: 2000,
  idleTimeoutMillis: 30000,
  statement_timeout: 5000,
  application_name: 'marketplace-backend',
});
pool.on('error', (err) => log('ERROR', `postgres pool: ${err.message}`));

const redis = createClient({
  url: process.env.REDIS_URL,
  socket: { connectTimeout: 2000, reconnectStrategy: (n) => Math.min(n * 200, 2000) },
});
redis.on('error', (err) => {
  if (!redis.lastErrorLogged || Date.now() - redis.lastErrorLogged > 10000) {
    redis.lastErrorLogged = Date.now();
    log('ERROR', `redis: ${err.message}`);
  }
});
redis.connect().catch((err) => log('ERROR', `redis connect: ${err.message}`));
// The response cache (cache:* keys) has its own Redis database (REDIS_CACHE_URL, db 1 in the reference stack),
// so that emptying the cache (FLUSHDB) never takes the sessions, rate limits and config of REDIS_URL's db with it.
// Without REDIS_CACHE_URL the cache shares REDIS_URL's client and database.
const cacheRedis = process.env.REDIS_CACHE_URL && process.env.REDIS_CACHE_URL !== process.env.REDIS_URL
  ? createClient({
    url: process.env.REDIS_CACHE_URL,
    socket: { connectTimeout: 2000, reconnectStrategy: (n) => Math.min(n * 200, 2000) },
  })
  : redis;
if (cacheRedis !== redis) {
  cacheRedis.on('error', (err) => {
    if (!cacheRedis.lastErrorLogged || Date.now() - cacheRedis.lastErrorLogged > 10000) {
      cacheRedis.lastErrorLogged = Date.now();
      log('ERROR', `redis cache: ${err.message}`);
    }
  });
  cacheRedis.connect().catch((err) => log('ERROR', `redis cache connect: ${err.message}`));
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------- metrics (Prometheus text format, written by hand) ----------
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const counters = new Map(); // key "method|route|status" -> count
const histo = new Map(); // key "method|route" -> {buckets:[], sum, count}
function observe(method, route, status, seconds) {
  const ck = `${method}|${route}|${status}`;
  counters.set(ck, (counters.get(ck) || 0) + 1);
  const hk = `${method}|${route}`;
  let h = histo.get(hk);
  if (!h) { h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }; histo.set(hk, h); }
  BUCKETS.forEach((b, i) => { if (seconds <= b) h.buckets[i] += 1; });
  h.sum += seconds; h.count += 1;
}
function metricsText() {
  const out = [];
  out.push('# HELP http_requests_total HTTP requests by method, route and status code.');
  out.push('# TYPE http_requests_total counter');
  for (const [k, v] of counters) {
    const [m, r, s] = k.split('|');
    out.push(`http_requests_total{method="${m}",route="${r}",status="${s}"} ${v}`);
  }
  out.push('# HELP http_request_duration_seconds HTTP request latency.');
  out.push('# TYPE http_request_duration_seconds histogram');
  for (const [k, h] of histo) {
    const [m, r] = k.split('|');
    BUCKETS.forEach((b, i) => out.push(`http_request_duration_seconds_bucket{method="${m}",route="${r}",le="${b}"} ${h.buckets[i]}`));
    out.push(`http_request_duration_seconds_bucket{method="${m}",route="${r}",le="+Inf"} ${h.count}`);
    out.push(`http_request_duration_seconds_sum{method="${m}",route="${r}"} ${h.sum.toFixed(6)}`);
    out.push(`http_request_duration_seconds_count{method="${m}",route="${r}"} ${h.count}`);
  }
  const mem = process.memoryUsage();
  out.push('# TYPE nodejs_heap_used_bytes gauge', `nodejs_heap_used_bytes ${mem.heapUsed}`);
  out.push('# TYPE nodejs_heap_total_bytes gauge', `nodejs_heap_total_bytes ${mem.heapTotal}`);
  out.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
  out.push('# TYPE process_start_time_seconds gauge', `process_start_time_seconds ${Math.floor(START / 1000)}`);
  out.push('# TYPE app_info gauge', `app_info{version="${VERSION}"} 1`);
  return out.join('\n') + '\n';
}
const START = Date.now();

// ---------- JWT (HS256 with node's crypto) ----------
const b64url = (buf) => Buffer.from(buf).toString('base64url');
function signJwt(payload) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(payload));
  const sig = crypto.createHmac('sha256', JWT_SECRET).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}
function verifyJwt(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  const expected = crypto.createHmac('sha256', JWT_SECRET).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  let payload;
  try { payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')); } catch (e) { return null; }
  if (!payload.exp || payload.exp * 1000 < Date.now()) return null;
  return payload;
}
const sha256hex = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

// ---------- app ----------
const app = express();
app.disable('x-powered-by');
app.set('trust proxy', 'loopback');
app.use(express.json({ limit: '64kb' }));

app.use((req, res, next) => {
  const t0 = process.hrtime.bigint();
  res.on('finish', () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const route = req.route ? (req.baseUrl || '') + req.route.path : 'unmatched';
    observe(req.method, route, res.statusCode, secs);
    const level = res.statusCode >= 500 ? 'ERROR' : res.statusCode >= 400 ? 'WARN' : 'INFO';
    log(level, `${req.ip} "${req.method} ${req.originalUrl.split('?')[0]}" ${res.statusCode} ${(secs * 1000).toFixed(1)}ms`);
  });
  next();
});

app.get('/api/health', async (req, res) => {
  const checks = {};
  const detail = {};
  let ok = true;
  try {
    await withTimeout(pool.query('SELECT 1'), 2000, 'postgres');
    checks.database = { status: 'ok' };
  } catch (err) {
    ok = false; checks.database = { status: 'down' }; detail.database = err.message;
  }
  try {
    if (!redis.isReady) throw new Error('not connected');
    await withTimeout(redis.ping(), 2000, 'redis');
    checks.redis = { status: 'ok' };
  } catch (err) {
    ok = false; checks.redis = { status: 'down' }; detail.redis = err.message;
  }
  if (BROKEN_HEALTH) { ok = false; checks.release = { status: 'error', error: 'this build is deliberately broken' }; }
  // The public answer names the failed dependency only; the exception text (hosts, ports, users) goes to the log.
  if (!ok) log('ERROR', `health check failed: ${JSON.stringify({ ...checks, detail })}`);
  res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'error', version: VERSION, port: PORT, uptime_s: Math.round((Date.now() - START) / 1000), checks });
});

app.get('/metrics', (req, res) => {
  res.type('text/plain; version=0.0.4').send(metricsText());
});

async function cached(key, ttl, load) {
  if (cacheRedis.isReady) {
    try {
      const hit = await withTimeout(cacheRedis.get(key), 1000, 'redis');
      if (hit !== null) return { data: JSON.parse(hit), cache: 'HIT' };
    } catch (err) { log('ERROR', `cache read ${key}: ${err.message}`); }
  }
  const data = await load();
  if (cacheRedis.isReady) {
    try { await withTimeout(cacheRedis.set(key, JSON.stringify(data), { EX: ttl }), 1000, 'redis'); } catch (err) { log('ERROR', `cache write ${key}: ${err.message}`); }
  }
  return { data, cache: 'MISS' };
}

app.get('/api/listings', async (req, res, next) => {
  try {
    const category = String(req.query.category || 'all').replace(/[^a-z]/g, '').slice(0, 32) || 'all';
    const page = Math.max(1, Math.min(1000, parseInt(req.query.page || '1', 10) || 1));
    const { data, cache } = await cached(`cache:listings:${category}:${page}`, 300, async () => {
      const params = [20, (page - 1) * 20];
      let where = 'WHERE available';
      if (category !== 'all') { params.push(category); where += ' AND category = $3'; }
      const r = await pool.query(`SELECT id, title, category, daily_rate, location FROM equipment_listings ${where} ORDER BY id LIMIT $1 OFFSET $2`, params);
      return r.rows;
    });
    res.set('X-Cache', cache).json({ page, category, items: data });
  } catch (err) { next(err); }
});

app.get('/api/listings/:id', async (req, res, next) => {
  try {
    const id = parseInt(req.params.id, 10);
    if (!Number.isFinite(id) || id < 1) return res.status(400).json({ error: 'bad id' });
    const { data, cache } = await cached(`cache:listing:${id}`, 600, async () => {
      const r = await pool.query('SELECT id, owner_id, title, category, daily_rate, location, available FROM equipment_listings WHERE id = $1', [id]);
      return r.rows[0] || null;
    });
    if (!data) return res.status(404).json({ error: 'not found' });
    return res.set('X-Cache', cache).json(data);
  } catch (err) { return next(err); }
});

app.post('/api/auth/login', async (req, res, next) => {
  try {
    const email = String((req.body && req.body.email) || '');
    const password = String((req.body && req.body.password) || '');
    const r = await pool.query('SELECT id, email, role, password_salt, password_hash FROM users WHERE email = $1', [email]);
    const u = r.rows[0];
    if (!u || sha256hex(u.password_salt + password) !== u.password_hash) {
      log('WARN', `failed login for ${JSON.stringify(email.slice(0, 64))} from ${req.ip}`);
      return res.status(401).json({ error: 'invalid credentials' });
    }
    const jti = crypto.randomBytes(12).toString('hex');
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ sub: String(u.id), email: u.email, role: u.role, jti, iat: now, exp: now + 3600 });
    if (redis.isReady) {
      try { await redis.set(`session:${jti}`, JSON.stringify({ user_id: u.id }), { EX: 3600 }); } catch (err) { log('ERROR', `session write: ${err.message}`); }
    }
    await pool.query('UPDATE users SET last_login_at = now() WHERE id = $1', [u.id]);
    return res.json({ token, expires_in: 3600 });
  } catch (err) { return next(err); }
});

async function authenticate(req, res, next) {
  try {
    const auth = req.get('authorization') || '';
    if (auth.startsWith('Bearer ')) {
      const claims = verifyJwt(auth.slice(7));
      if (!claims) { log('WARN', `unauthorized: invalid or expired token from ${req.ip}`); return res.status(401).json({ error: 'invalid token' }); }
      req.user = { id: parseInt(claims.sub, 10), via: 'jwt' };
      return next();
    }
    const key = req.get('x-api-key');
    if (key) {
      const r = await pool.query('SELECT user_id, revoked_at FROM api_keys WHERE key_hash = $1', [sha256hex(key)]);
      const row = r.rows[0];
      if (!row || row.revoked_at) {
        log('WARN', `unauthorized: ${row ? 'revoked' : 'unknown'} api key from ${req.ip}`);
        return res.status(401).json({ error: row ? 'api key revoked' : 'invalid api key' });
      }
      req.user = { id: Number(row.user_id), via: 'api_key' };
      return next();
    }
    log('WARN', `unauthorized: no credentials from ${req.ip}`);
    return res.status(401).json({ error: 'authentication required' });
  } catch (err) { return next(err); }
}

app.get('/api/me', authenticate, async (req, res, next) => {
  try {
    const r = await pool.query('SELECT id, email, full_name, role FROM users WHERE id = $1', [req.user.id]);
    res.json({ user: r.rows[0] || null, via: req.user.via });
  } catch (err) { next(err); }
});

app.get('/api/orders', authenticate, async (req, res, next) => {
  try {
    const r = await pool.query('SELECT id, listing_id, starts_on, ends_on, status, total_amount FROM orders WHERE renter_id = $1 ORDER BY id DESC LIMIT 50', [req.user.id]);
    res.json({ items: r.rows });
  } catch (err) { next(err); }
});

if (FAULTS) {
  // Fault injection for the demo and the tests: answers with the given 5xx status.
  app.get('/api/fault/:status', (req, res) => {
    const status = Math.max(500, Math.min(599, parseInt(req.params.status, 10) || 500));
    log('ERROR', `injected fault ${status}`);
    res.status(status).json({ error: 'injected fault' });
  });
}

app.use((req, res) => res.status(404).json({ error: 'not found' }));
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  log('ERROR', `${req.method} ${req.originalUrl.split('?')[0]}: ${err.message}`);
  res.status(500).json({ error: 'internal error' });
});

// ---------- listen on the first free port of the range ----------
let PORT = null;
const server = http.createServer(app);
function listen(port) {
  server.once('error', (err) => {
    if (err.code === 'EADDRINUSE' && port < LAST) return listen(port + 1);
    log('ERROR', `cannot listen on ${BIND}:${port}: ${err.message}`);
    return process.exit(1);
  });
  server.listen(port, BIND, () => {
    PORT = port;
    try { require('fs').writeFileSync('/tmp/backend.port', String(port)); } catch (e) { /* read-only fs */ }
    log('INFO', `equipment-marketplace backend ${VERSION} listening on ${BIND}:${port}`);
  });
}
listen(FIRST);

function shutdown(sig) {
  log('INFO', `${sig} received, shutting down`);
  server.close(() => process.exit(0));
  // Node 18's close() waits for idle keep-alive sockets (nginx's upstream pool, Prometheus' scrapes) to time
  // out, so every stop took the 3 s below; close them now (requests in flight still finish).
  if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
  setTimeout(() => process.exit(0), 3000).unref();
  pool.end().catch(() => {});
  redis.quit().catch(() => {});
  if (cacheRedis !== redis) cacheRedis.quit().catch(() => {});
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
