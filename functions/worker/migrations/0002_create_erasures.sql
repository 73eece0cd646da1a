-- Tombstones for `leadpipe db erase`: a lead of an erased person received before the erasure is
-- never stored again (a redelivery, a batch in flight, a DLQ redrive). A tombstone holds a salted
-- SHA-256 of the normalised address, never the address; the salt is random per database, so the
-- hashes match no list computed elsewhere.
CREATE TABLE IF NOT EXISTS {erasure_salt_table} (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    salt     text    NOT NULL
);
INSERT INTO {erasure_salt_table} (salt)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (only_row) DO NOTHING;

CREATE TABLE IF NOT EXISTS {erasures_table} (
    email_sha256 bytea       PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now()
);
