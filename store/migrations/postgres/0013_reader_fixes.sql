-- Mobile readers (patrol cars, handhelds) send their GPS position in every frame. A read they
-- made is placed where the reader was: the fix of the frame that reported it. Fixes a few
-- metres apart within a minute are not kept (the tracker thins them).
CREATE TABLE reader_fixes (
    station  bigint  NOT NULL,
    at_ms    bigint  NOT NULL,
    lat      float8  NOT NULL,
    lon      float8  NOT NULL,
    PRIMARY KEY (station, at_ms)
);
-- Each mobile reader's latest fix: which stations are mobile, and where each is now.
CREATE TABLE readers (
    station  bigint  PRIMARY KEY,
    at_ms    bigint  NOT NULL,
    lat      float8  NOT NULL,
    lon      float8  NOT NULL
);
