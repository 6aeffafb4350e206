-- Mobile readers (patrol cars, handhelds) send their GPS position in every frame. A read they
-- made is placed where the reader was: the fix of the frame that reported it. Fixes a few
-- metres apart within a minute are not kept (the tracker thins them).
CREATE TABLE reader_fixes (
    station  INTEGER NOT NULL,
    at_ms    INTEGER NOT NULL,
    lat      REAL    NOT NULL,
    lon      REAL    NOT NULL,
    PRIMARY KEY (station, at_ms)
) WITHOUT ROWID;
-- Each mobile reader's latest fix: which stations are mobile, and where each is now.
CREATE TABLE readers (
    station  INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    lat      REAL    NOT NULL,
    lon      REAL    NOT NULL
);
