-- A disarmed vehicle keeps its row, with when it was disarmed: a theft reported without a time
-- looks back to the owner's last arm or disarm.
ALTER TABLE guards ADD COLUMN disarmed_at INTEGER;
