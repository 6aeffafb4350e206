-- A cluster partition's rule state at its checkpoint (issue 18): where each tag a fence watches
-- is placed, with its hysteresis, as the tracker's JSON. A shard taking the partition over puts
-- it back, so a fence crossing right after the move is the one an uninterrupted tracker raises.
ALTER TABLE cluster_partitions ADD COLUMN rule_state text;
