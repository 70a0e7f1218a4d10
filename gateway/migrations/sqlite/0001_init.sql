-- Dedupe keys of accepted webhook events: a re-delivered update finds its key here.
CREATE TABLE events (
    channel     TEXT    NOT NULL,
    dedupe_key  TEXT    NOT NULL,
    received_at INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (channel, dedupe_key)
) WITHOUT ROWID;
CREATE INDEX events_received_at ON events (received_at);

-- Durable work: one row per inbound event to run through the scenario, or per call_node.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,          -- event | call_node
    channel      TEXT    NOT NULL,
    chat_id      TEXT    NOT NULL,
    payload      TEXT    NOT NULL,          -- JSON: the event, or node + params
    state        TEXT,                      -- JSON: where the run is (node, step, attempt, vars)
    status       TEXT    NOT NULL,          -- queued | running | done | failed
    runs         INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,          -- unix ms: not before
    locked_until INTEGER,                   -- unix ms: lease of the worker running it
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);

-- One row per chat that has talked to the bot.
CREATE TABLE contacts (
    channel         TEXT    NOT NULL,
    chat_id         TEXT    NOT NULL,
    user_id         TEXT,
    first_name      TEXT,
    last_name       TEXT,
    username        TEXT,
    start_param     TEXT,
    status          TEXT    NOT NULL DEFAULT 'subscribed', -- subscribed | blocked
    last_inbound_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (channel, chat_id)
) WITHOUT ROWID;

-- call_node Idempotency-Key → the job it created.
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    job_id       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
