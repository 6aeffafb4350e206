-- Webhooks (issue 20): an administrator's URL that hears of alerts as signed JSON. `kinds` is a
-- comma-separated list of alert kinds ('' = every kind); `secret` signs each delivery (HMAC) and
-- is never shown again after registration. `queued_to`: the last alert (seq) already queued for
-- it; a new webhook starts at the latest alert (it hears of alerts from its registration on).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    url         text   NOT NULL,
    kinds       text   NOT NULL,
    secret      text   NOT NULL,
    created_by  text   NOT NULL,
    created_at  INTEGER NOT NULL,
    queued_to   INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- One row per alert per webhook, kept until delivered or expired, across restarts: the
-- delivery log. A sender claims due rows until `claimed_until` (so that several API nodes never
-- send one row twice at once); `outcome` says what the last attempt got.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id),
    alert_seq       INTEGER NOT NULL,
    state           text   NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    outcome         text   NOT NULL DEFAULT '',
    UNIQUE (webhook_id, alert_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
