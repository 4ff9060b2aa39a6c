-- Seed data for the reference stack: realistic volumes, deterministic content.
SET ROLE :"app_user";
SELECT setseed(0.42) AS _seed \gset

-- The demo login: demo@example.com / demo-password (salt 'demo-salt').
INSERT INTO users (email, full_name, password_salt, password_hash, role)
VALUES ('demo@example.com', 'Demo User', 'demo-salt',
        encode(sha256(convert_to('demo-salt' || 'demo-password', 'UTF8')), 'hex'), 'admin');

INSERT INTO users (email, full_name, password_salt, password_hash, role, created_at, last_login_at)
SELECT 'user' || g || '@example.com', 'User ' || g, md5(g::text),
       encode(sha256(convert_to(md5(g::text) || 'password' || g, 'UTF8')), 'hex'),
       CASE WHEN g % 10 = 0 THEN 'vendor' ELSE 'customer' END,
       now() - (g % 900) * interval '1 day', now() - (g % 30) * interval '1 day'
FROM generate_series(1::bigint, :users - 1) AS g;

INSERT INTO equipment_listings (owner_id, title, category, daily_rate, location, available, created_at)
SELECT 1 + (g * 7919) % :users,
       (ARRAY['Excavator', 'Scissor lift', 'Concrete mixer', 'Generator', 'Forklift', 'Compactor', 'Boom lift', 'Skid steer'])[1 + g % 8]
         || ' #' || g,
       (ARRAY['earthmoving', 'access', 'concrete', 'power', 'handling', 'compaction'])[1 + g % 6],
       round((25 + random() * 975)::numeric, 2),
       (ARRAY['Berlin', 'Hamburg', 'Munich', 'Cologne', 'Frankfurt', 'Leipzig'])[1 + g % 6],
       g % 5 <> 0,
       now() - (g % 700) * interval '1 day'
FROM generate_series(1::bigint, :listings) AS g;

INSERT INTO orders (listing_id, renter_id, starts_on, ends_on, status, total_amount, created_at)
SELECT 1 + (g * 104729) % :listings, 1 + (g * 15485863) % :users,
       current_date - (g % 600)::int, current_date - (g % 600)::int + (1 + g % 14)::int,
       (ARRAY['pending', 'confirmed', 'active', 'returned', 'returned', 'returned', 'cancelled'])[1 + g % 7],
       round((50 + random() * 5000)::numeric, 2),
       now() - (g % 600) * interval '1 day'
FROM generate_series(1::bigint, :orders) AS g;

INSERT INTO payments (order_id, amount, provider, status, paid_at)
SELECT o.id, o.total_amount, (ARRAY['stripe', 'paypal', 'invoice'])[1 + o.id % 3],
       CASE WHEN o.status = 'cancelled' THEN 'refunded' ELSE 'captured' END, o.created_at + interval '1 hour'
FROM orders o WHERE o.status <> 'pending';

-- API keys: 'emk_demo_<n>' for n in 1..200; the stored value is the sha256 of the full key.
INSERT INTO api_keys (user_id, name, key_prefix, key_hash, created_at)
SELECT 1 + (g * 31) % :users, 'integration ' || g, 'emk_demo_' || g,
       encode(sha256(convert_to('emk_demo_' || g, 'UTF8')), 'hex'), now() - g * interval '1 day'
FROM generate_series(1, 200) AS g;

INSERT INTO audit_events (occurred_at, actor_id, action, detail)
SELECT now() - g * interval '1 minute', 1 + g % :users,
       (ARRAY['login', 'listing.update', 'order.create', 'payment.capture'])[1 + g % 4], 'seed event ' || g
FROM generate_series(1, 10000) AS g;

RESET ROLE;
ANALYZE;
