-- Vehicles armed by their owners while parked: where they were when armed.
CREATE TABLE guards (
    tag       INTEGER PRIMARY KEY REFERENCES vehicles (tag),
    armed_at  INTEGER NOT NULL,
    station   INTEGER NOT NULL,
    lat       REAL    NOT NULL,
    lon       REAL    NOT NULL
);
