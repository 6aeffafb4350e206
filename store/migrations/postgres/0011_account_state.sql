-- Accounts an administrator has disabled (their tokens stop working, logins are refused), and
-- whether an audited query was answered or refused (a refusal is what an auditor looks for).
ALTER TABLE users ADD COLUMN disabled_at bigint;
ALTER TABLE audit ADD COLUMN outcome text NOT NULL DEFAULT 'answered';
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_at ON audit (at);
