-- Case work (issue 20): who a theft case is assigned to, and its history (assigned, closed, a
-- note), append-only like the audit log. Alerts by tag: a case's sightings, a vehicle's alerts.
ALTER TABLE cases ADD COLUMN assignee text;
CREATE TABLE case_events (
    id       INTEGER PRIMARY KEY,
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    at       INTEGER NOT NULL,
    actor    text   NOT NULL,
    kind     text   NOT NULL,
    detail   text   NOT NULL DEFAULT ''
);
CREATE INDEX case_events_by_case ON case_events (case_id, id);
CREATE INDEX alerts_by_tag ON alerts (tag, seq);
