-- Watch lists the tracker keeps in memory and reloads at start: geofences and companion pairs.
CREATE TABLE geofences (
    id          bigserial PRIMARY KEY,
    -- The fence as JSON: name, outline, watched tags, on_enter, on_leave.
    definition  text   NOT NULL,
    created_by  bigint NOT NULL,
    created_at  bigint NOT NULL
);

-- A tag that must not be heard without its companion (a person and a carer, a vehicle and its
-- owner's card).
CREATE TABLE companions (
    tag         bigint PRIMARY KEY,
    companion   bigint NOT NULL,
    created_by  bigint NOT NULL,
    created_at  bigint NOT NULL
);
