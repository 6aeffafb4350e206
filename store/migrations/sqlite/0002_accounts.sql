-- Accounts, roles, bearer tokens (stored hashed), vehicle owners, and the append-only audit log.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('owner', 'officer', 'dispatcher', 'admin')),
    created_at     INTEGER NOT NULL
);

-- Only the SHA-256 of a token is kept: a copy of the database does not let anyone log in.
CREATE TABLE tokens (
    hash        BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX tokens_user ON tokens (user_id);

ALTER TABLE vehicles ADD COLUMN owner_id INTEGER REFERENCES users (id);
CREATE INDEX vehicles_owner ON vehicles (owner_id);

-- Who looked at whose movements, when and why. Never changed, never deleted.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    purpose  TEXT    NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
