-- Cases opened from a national stolen-vehicle list (issue 20): where a case came from
-- (`report`: an owner or officer; `hotlist`: an import), and when the list says it lapses
-- (closed then by the API's expiry sweep; NULL: never).
ALTER TABLE cases ADD COLUMN source text NOT NULL DEFAULT 'report';
ALTER TABLE cases ADD COLUMN expires_at INTEGER;
CREATE INDEX cases_expiring ON cases (expires_at) WHERE closed_at IS NULL AND expires_at IS NOT NULL;
