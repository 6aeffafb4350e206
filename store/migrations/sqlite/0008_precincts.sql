-- Police districts: named areas that officers filter their live alert stream by.
CREATE TABLE precincts (
    id          INTEGER PRIMARY KEY,
    name        text    NOT NULL UNIQUE,
    -- The outline as JSON: [{"lat": .., "lon": ..}, ...].
    area        text    NOT NULL,
    created_at  INTEGER NOT NULL
);
