-- Schema of the example app. The Python seed (src/app/seed.py) creates the same schema;
-- tests/test_seed.py compares the two so they cannot drift apart.
-- No column defaults to the current time: a seeded database must be byte-identical
-- between two builds with the same secrets.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    must_change_password INTEGER NOT NULL DEFAULT 1 CHECK (must_change_password IN (0, 1)),
    password_changed_at TEXT
);

-- Values are JSON documents (a string setting is stored with its quotes).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
);

-- Only the sha256 of a client token is stored; the plaintext lives in the state file.
CREATE TABLE api_clients (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    alias TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL CHECK (length(token_sha256) = 64),
    description TEXT NOT NULL DEFAULT '',
    is_primary INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1))
);

-- A single row (id = 1). Environment variables MAIL_* override each column at run time.
CREATE TABLE email_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    host TEXT,
    port INTEGER NOT NULL DEFAULT 25,
    username TEXT,
    password TEXT,
    use_tls INTEGER NOT NULL DEFAULT 1 CHECK (use_tls IN (0, 1)),
    from_address TEXT NOT NULL,
    notify_to TEXT NOT NULL
);

CREATE TABLE dns_updates (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    domain TEXT NOT NULL,
    hostname TEXT NOT NULL,
    type TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    statuscode INTEGER,
    logins INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);

CREATE INDEX dns_updates_created_at ON dns_updates (created_at);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'error')),
    message TEXT NOT NULL DEFAULT ''
);

-- One row per accepted write of POST /api/writes: the zero-loss deploy test counts them.
CREATE TABLE api_writes (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    client TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE
);
