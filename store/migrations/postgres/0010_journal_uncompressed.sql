-- Compressing every journaled frame cost Postgres about a fifth of its CPU at 860,000 detections
-- a second (pglz in a profile), to save space in rows that live one checkpoint interval: frames
-- are stored out of line, uncompressed.
ALTER TABLE frame_journal ALTER COLUMN frame SET STORAGE EXTERNAL;
