-- Frames applied since the last visit checkpoint, exactly as their stations sent them. A flush
-- commits them (with their alerts and watermarks) so their ACKs can go; a checkpoint writes the
-- visits they changed, coalesced, and deletes them. After a crash the server applies them again.
CREATE TABLE frame_journal (
    seq             INTEGER PRIMARY KEY,
    -- Server time the frame was applied at, and the next visit id then: applying it again with
    -- both gives its visits the same ids, which its stored alerts name.
    applied_at      INTEGER NOT NULL,
    first_visit_id  INTEGER NOT NULL,
    frame           BLOB    NOT NULL
);
