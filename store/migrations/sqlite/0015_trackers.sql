-- GPS trackers (issue 19, docs/DEVICES.md). Each is a mobile reader of the vehicle it is fitted
-- to: it has a station row of its own (ids from 3,000,000,000 up, assigned here), whose key
-- signs the frames the device listener makes from its reports, so its fixes go through the same
-- exactly-once path as a station's. `report` is its latest report as JSON (fix, power, alarm).
CREATE TABLE trackers (
    imei        TEXT    PRIMARY KEY CHECK (length(imei) = 15),
    tag         INTEGER NOT NULL REFERENCES vehicles (tag),
    station     INTEGER NOT NULL UNIQUE REFERENCES stations (id),
    protocol    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    report_at   INTEGER,
    report      TEXT
);
CREATE INDEX trackers_tag ON trackers (tag);

-- Commands for trackers (engine stop and resume), kept until the device has answered: a device
-- that is not connected gets its command when it next logs in, after a restart too.
CREATE TABLE tracker_commands (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    imei          TEXT    NOT NULL,
    tag           INTEGER NOT NULL,
    action        TEXT    NOT NULL CHECK (action IN ('stop', 'resume')),
    requested_by  TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    requested_at  INTEGER NOT NULL,
    sent_at       INTEGER,
    answered_at   INTEGER,
    answer        TEXT
);
CREATE INDEX tracker_commands_imei ON tracker_commands (imei, id);
