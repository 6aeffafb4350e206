-- What an officer needs to act on an alert (case, heading, predicted next stations, fence,
-- companion, clock skew...), as JSON. Alerts about a station have tag 0 (never a tag on the wire).
ALTER TABLE alerts ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
