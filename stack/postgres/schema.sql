-- Equipment Marketplace schema (reference stack). Owned by the application role.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SET ROLE :"app_user";

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    full_name     text NOT NULL,
    password_salt text NOT NULL,
    password_hash text NOT NULL,           -- hex sha256(salt || password)
    role          text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'vendor', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

CREATE TABLE equipment_listings (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users(id),
    title         text NOT NULL,
    category      text NOT NULL,
    daily_rate    numeric(10, 2) NOT NULL CHECK (daily_rate > 0),
    location      text NOT NULL,
    available     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX equipment_listings_category_idx ON equipment_listings (category, id);

CREATE TABLE orders (
    id            bigserial PRIMARY KEY,
    listing_id    bigint NOT NULL REFERENCES equipment_listings(id),
    renter_id     bigint NOT NULL REFERENCES users(id),
    starts_on     date NOT NULL,
    ends_on       date NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'confirmed', 'active', 'returned', 'cancelled')),
    total_amount  numeric(12, 2) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX orders_renter_idx ON orders (renter_id);
CREATE INDEX orders_listing_idx ON orders (listing_id);

CREATE TABLE payments (
    id            bigserial PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES orders(id),
    amount        numeric(12, 2) NOT NULL,
    provider      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('authorized', 'captured', 'refunded', 'failed')),
    paid_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_idx ON payments (order_id);

CREATE TABLE api_keys (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users(id),
    name          text NOT NULL,
    key_prefix    text NOT NULL,
    key_hash      text NOT NULL UNIQUE,    -- hex sha256 of the full key
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- An append-only table without a key, as real applications have: a plain-SQL restore piped into psql
-- silently duplicates its rows.
CREATE TABLE audit_events (
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor_id      bigint,
    action        text NOT NULL,
    detail        text
);
RESET ROLE;
