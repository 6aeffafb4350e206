-- Accounts, roles, bearer tokens (stored hashed), vehicle owners, and the append-only audit log.

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text      NOT NULL UNIQUE,
    password_hash  text      NOT NULL,
    role           text      NOT NULL CHECK (role IN ('owner', 'officer', 'dispatcher', 'admin')),
    created_at     bigint    NOT NULL
);

-- Only the SHA-256 of a token is kept: a copy of the database does not let anyone log in.
CREATE TABLE tokens (
    hash        bytea  PRIMARY KEY CHECK (octet_length(hash) = 32),
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    revoked_at  bigint
);
CREATE INDEX tokens_user ON tokens (user_id);

ALTER TABLE vehicles ADD COLUMN owner_id bigint REFERENCES users (id);
CREATE INDEX vehicles_owner ON vehicles (owner_id);

-- Who looked at whose movements, when and why. Never changed, never deleted.
CREATE TABLE audit (
    id       bigserial PRIMARY KEY,
    at       bigint    NOT NULL,
    actor    text      NOT NULL,
    role     text      NOT NULL,
    action   text      NOT NULL,
    target   text      NOT NULL,
    purpose  text      NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
