-- A cluster's tracker shards (issue 18): each partition's last applied JetStream sequence,
-- advanced in the same transaction as the alerts it raised, only from the version the
-- committing shard read (a shard that lost its lease cannot commit over its successor); and the sequence
-- its stored visits (and seen frames) are a checkpoint of: a shard taking the partition applies
-- the stream again from there.
CREATE TABLE cluster_partitions (
    partition    bigint PRIMARY KEY,
    applied_seq  bigint NOT NULL,
    checkpoint_seq bigint NOT NULL,
    -- Every commit adds one, and commits only from the version its shard read: the fencing
    -- token (a checkpoint may leave the applied sequence where it was).
    version      bigint NOT NULL,
    updated_at   bigint NOT NULL
);
-- The frames (station, session, seq runs) each partition had applied at its checkpoint: a
-- resend older than JetStream's duplicate window is recognised here.
CREATE TABLE cluster_seen (
    partition   bigint NOT NULL,
    station     bigint NOT NULL,
    session     bigint NOT NULL,
    runs        text   NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (partition, station, session)
);
