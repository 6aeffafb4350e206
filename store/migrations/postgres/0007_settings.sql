-- Settings an administrator changes while the server runs (the retention period), overriding
-- the configuration file's value from then on.
CREATE TABLE settings (
    key         text    PRIMARY KEY,
    value       text    NOT NULL,
    updated_by  text    NOT NULL,
    updated_at  bigint NOT NULL
);
