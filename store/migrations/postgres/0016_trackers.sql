-- GPS trackers (issue 19, docs/DEVICES.md). Each is a mobile reader of the vehicle it is fitted
-- to: it has a station row of its own (ids from 3,000,000,000 up, assigned here), whose key
-- signs the frames the device listener makes from its reports, so its fixes go through the same
-- exactly-once path as a station's. `report` is its latest report as JSON (fix, power, alarm).
CREATE TABLE trackers (
    imei        text   PRIMARY KEY CHECK (length(imei) = 15),
    tag         bigint NOT NULL REFERENCES vehicles (tag),
    station     bigint NOT NULL UNIQUE REFERENCES stations (id),
    protocol    text   NOT NULL,
    created_at  bigint NOT NULL,
    report_at   bigint,
    report      text
);
CREATE INDEX trackers_tag ON trackers (tag);

-- Commands for trackers (engine stop and resume), kept until the device has answered: a device
-- that is not connected gets its command when it next logs in, after a restart too.
CREATE TABLE tracker_commands (
    id            bigserial PRIMARY KEY,
    imei          text   NOT NULL,
    tag           bigint NOT NULL,
    action        text   NOT NULL CHECK (action IN ('stop', 'resume')),
    requested_by  text   NOT NULL,
    purpose       text   NOT NULL,
    requested_at  bigint NOT NULL,
    sent_at       bigint,
    answered_at   bigint,
    answer        text
);
CREATE INDEX tracker_commands_imei ON tracker_commands (imei, id);
