-- TagWatch schema, Postgres. Times are Unix milliseconds (bigint).

CREATE TABLE stations (
    id          bigint  PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
    name        text    NOT NULL,
    lat         float8  NOT NULL,
    lon         float8  NOT NULL,
    key         bytea   NOT NULL CHECK (octet_length(key) = 32),
    created_at  bigint  NOT NULL
);

CREATE TABLE vehicles (
    tag          bigint PRIMARY KEY CHECK (tag BETWEEN 1 AND 4294967295),
    plate        text   NOT NULL CONSTRAINT vehicles_plate_key UNIQUE,
    owner_name   text   NOT NULL,
    owner_phone  text   NOT NULL,
    created_at   bigint NOT NULL
);

CREATE TABLE cases (
    id         bigserial PRIMARY KEY,
    tag        bigint    NOT NULL REFERENCES vehicles (tag),
    opened_at  bigint    NOT NULL,
    closed_at  bigint,
    note       text      NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX cases_open_tag ON cases (tag) WHERE closed_at IS NULL;

-- Range-partitioned by id: an id is its visit's creation time << 20 (see the model's
-- VISIT_ID_TIME_SHIFT), so each daily partition holds the visits created that day and the
-- partition key never changes. The store creates the coming days' partitions ahead of time.
CREATE TABLE visits (
    id          bigint NOT NULL PRIMARY KEY,
    tag         bigint NOT NULL,
    station     bigint NOT NULL,
    first_seen  bigint NOT NULL,
    last_seen   bigint NOT NULL,
    best_rssi   bigint NOT NULL,
    reads       bigint NOT NULL
) PARTITION BY RANGE (id);
-- fillfactor 70 on every partition: an extension (last_seen, best_rssi, reads) then fits on its
-- page as a HOT update, which writes no index at all. Partitions created later get it too.
CREATE TABLE visits_default PARTITION OF visits DEFAULT WITH (fillfactor = 70);
-- A tag's track by time, and its last location (its latest visits by start).
CREATE INDEX visits_tag_first ON visits (tag, first_seen);
-- Who was at a station in a time window.
CREATE INDEX visits_station_first ON visits (station, first_seen);
-- Deliberately no index on last_seen: it changes on every extension, and any index on it would
-- rule out HOT updates. Restoring open visits scans the recent partitions by id instead.

CREATE TABLE alerts (
    seq        bigint PRIMARY KEY,
    id         text   NOT NULL UNIQUE,
    kind       text   NOT NULL,
    tag        bigint NOT NULL,
    station    bigint NOT NULL,
    lat        float8 NOT NULL,
    lon        float8 NOT NULL,
    seen_at    bigint NOT NULL,
    raised_at  bigint NOT NULL
);

CREATE TABLE watermarks (
    station     bigint NOT NULL,
    session     bigint NOT NULL,
    contiguous  bigint NOT NULL,
    above       text   NOT NULL DEFAULT '',
    updated_at  bigint NOT NULL,
    PRIMARY KEY (station, session)
);

CREATE TABLE station_status (
    station        bigint PRIMARY KEY,
    received_at    bigint NOT NULL,
    station_time   bigint NOT NULL,
    uptime_s       bigint NOT NULL,
    backlog        bigint NOT NULL,
    fw_version     bigint NOT NULL,
    temp_c         bigint NOT NULL,
    power          bigint NOT NULL,
    tags_in_range  bigint NOT NULL
);
