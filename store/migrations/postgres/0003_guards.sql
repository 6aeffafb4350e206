-- Vehicles armed by their owners while parked: where they were when armed.
CREATE TABLE guards (
    tag       bigint PRIMARY KEY REFERENCES vehicles (tag),
    armed_at  bigint NOT NULL,
    station   bigint NOT NULL,
    lat       float8 NOT NULL,
    lon       float8 NOT NULL
);
