-- Watch lists the tracker keeps in memory and reloads at start: geofences and companion pairs.
CREATE TABLE geofences (
    id          INTEGER PRIMARY KEY,
    -- The fence as JSON: name, outline, watched tags, on_enter, on_leave.
    definition  TEXT    NOT NULL,
    created_by  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A tag that must not be heard without its companion (a person and a carer, a vehicle and its
-- owner's card).
CREATE TABLE companions (
    tag         INTEGER PRIMARY KEY,
    companion   INTEGER NOT NULL,
    created_by  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
