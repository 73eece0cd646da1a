-- The drain breaker's probe writes and commits this one row with the worker's credentials: a database
-- that takes logins and reads but whose commits never finish (a synchronous standby away, a stalled
-- disk flush), that is out of disk (53100) or refusing writes near xid wraparound (54000) fails every
-- batch, and only a probe that commits a real write sees it too. No personal data: one timestamp.
CREATE TABLE IF NOT EXISTS {heartbeat_table} (
    only_row boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    at       timestamptz NOT NULL DEFAULT now()
);
