-- TagWatch schema, SQLite. Times are Unix milliseconds.

CREATE TABLE stations (
    id          INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
    name        TEXT    NOT NULL,
    lat         REAL    NOT NULL,
    lon         REAL    NOT NULL,
    key         BLOB    NOT NULL CHECK (length(key) = 32),
    created_at  INTEGER NOT NULL
);

CREATE TABLE vehicles (
    tag          INTEGER PRIMARY KEY CHECK (tag BETWEEN 1 AND 4294967295),
    plate        TEXT    NOT NULL UNIQUE,
    owner_name   TEXT    NOT NULL,
    owner_phone  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE cases (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tag        INTEGER NOT NULL REFERENCES vehicles (tag),
    opened_at  INTEGER NOT NULL,
    closed_at  INTEGER,
    note       TEXT    NOT NULL DEFAULT ''
);
-- A tag has at most one open case.
CREATE UNIQUE INDEX cases_open_tag ON cases (tag) WHERE closed_at IS NULL;

-- One row per visit; the tracker owns the id and upserts the row while the visit grows.
CREATE TABLE visits (
    id          INTEGER PRIMARY KEY,
    tag         INTEGER NOT NULL,
    station     INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    best_rssi   INTEGER NOT NULL,
    reads       INTEGER NOT NULL
);
-- A tag's track by time, and its last location (its latest visits by start). No index on
-- (tag, last_seen): last_seen changes on every upsert, and keeping such an index at random
-- places costs more than all the others together.
CREATE INDEX visits_tag_first ON visits (tag, first_seen);
-- Who was at a station in a time window.
CREATE INDEX visits_station_first ON visits (station, first_seen);
-- Open visits to restore at start.
CREATE INDEX visits_last_seen ON visits (last_seen);

-- seq is the SSE event id: increasing, assigned when the alert is raised.
CREATE TABLE alerts (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    tag        INTEGER NOT NULL,
    station    INTEGER NOT NULL,
    lat        REAL    NOT NULL,
    lon        REAL    NOT NULL,
    seen_at    INTEGER NOT NULL,
    raised_at  INTEGER NOT NULL
);

-- Applied frames of each station session, committed with the data they carried.
CREATE TABLE watermarks (
    station     INTEGER NOT NULL,
    session     INTEGER NOT NULL,
    contiguous  INTEGER NOT NULL,
    above       TEXT    NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (station, session)
);

CREATE TABLE station_status (
    station        INTEGER PRIMARY KEY,
    received_at    INTEGER NOT NULL,
    station_time   INTEGER NOT NULL,
    uptime_s       INTEGER NOT NULL,
    backlog        INTEGER NOT NULL,
    fw_version     INTEGER NOT NULL,
    temp_c         INTEGER NOT NULL,
    power          INTEGER NOT NULL,
    tags_in_range  INTEGER NOT NULL
);
