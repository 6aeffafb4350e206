-- What the police did about each alert, in order: accepted or rejected (with a reason), a
-- patrol unit dispatched. Append-only, like the audit log: a change of mind is a new row.
CREATE TABLE alert_actions (
    id         bigserial PRIMARY KEY,
    alert_seq  bigint NOT NULL,
    action     text    NOT NULL,
    unit       text,
    reason     text    NOT NULL,
    actor      text    NOT NULL,
    at         bigint NOT NULL
);
CREATE INDEX alert_actions_by_alert ON alert_actions (alert_seq, id);

-- Patrol units and their last reported position.
CREATE TABLE patrol_units (
    unit         text    PRIMARY KEY,
    officer      text    NOT NULL,
    lat          float8    NOT NULL,
    lon          float8    NOT NULL,
    available    boolean NOT NULL,
    reported_at  bigint NOT NULL
);
