-- What a vehicle looks like, for an officer to recognise it (issue 20), and its plate as
-- searched: `plate_key` is `tagwatch_model::plate_key(plate)` (ASCII letters upper-cased, spaces,
-- hyphens, dots and middle dots removed); SQLite's default BINARY collation makes a prefix
-- search a range of the index.
ALTER TABLE vehicles ADD COLUMN make text NOT NULL DEFAULT '';
ALTER TABLE vehicles ADD COLUMN model text NOT NULL DEFAULT '';
ALTER TABLE vehicles ADD COLUMN colour text NOT NULL DEFAULT '';
ALTER TABLE vehicles ADD COLUMN plate_key text NOT NULL DEFAULT '';
UPDATE vehicles SET plate_key = upper(replace(replace(replace(replace(plate, ' ', ''), '-', ''),
    '.', ''), '·', ''));
CREATE INDEX vehicles_plate_search ON vehicles (plate_key);
