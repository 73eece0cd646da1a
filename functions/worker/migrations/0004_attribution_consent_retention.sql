-- Attribution, consent evidence and the retention's own record. Adding nullable columns (or ones with a
-- constant default) only changes the catalogue: no table rewrite, the lock lasts milliseconds.
ALTER TABLE {leads_table}
    ADD COLUMN IF NOT EXISTS gclid                text,
    ADD COLUMN IF NOT EXISTS gbraid               text,
    ADD COLUMN IF NOT EXISTS wbraid               text,
    ADD COLUMN IF NOT EXISTS fbclid               text,
    ADD COLUMN IF NOT EXISTS msclkid              text,
    ADD COLUMN IF NOT EXISTS li_fat_id            text,
    ADD COLUMN IF NOT EXISTS ttclid               text,
    ADD COLUMN IF NOT EXISTS referrer             text,
    -- {{"touched_at", "landing_page", "referrer", "utm_*", click ids}}, only the keys the browser saw
    ADD COLUMN IF NOT EXISTS first_touch          jsonb,
    ADD COLUMN IF NOT EXISTS last_touch           jsonb,
    ADD COLUMN IF NOT EXISTS consent_text_id      text,
    ADD COLUMN IF NOT EXISTS consent_text_version text,
    ADD COLUMN IF NOT EXISTS consent_text_sha256  text,
    -- The purposes agreed to, a JSON array of names: `consent_purposes ? 'newsletter'`. Empty without consent.
    ADD COLUMN IF NOT EXISTS consent_purposes     jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN IF NOT EXISTS consent_at           timestamptz,
    ADD COLUMN IF NOT EXISTS consent_page         text;

-- "Every lead who agreed to version 3 of the newsletter text", the question a consent audit asks. Only rows with a
-- consent text are indexed: on an existing table the build writes next to nothing (it still reads the table once).
CREATE INDEX IF NOT EXISTS {consent_text_index} ON {leads_table} (consent_text_id, consent_text_version)
    WHERE consent_text_id IS NOT NULL;
-- The retention deletes tombstones by age, a few hundred at a time.
CREATE INDEX IF NOT EXISTS {erasures_erased_at_index} ON {erasures_table} (erased_at);

-- What the retention did last (one row, no personal data), for `leadpipe status` and on-call.
CREATE TABLE IF NOT EXISTS {retention_table} (
    only_row                 boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    lead_retention_days      integer,
    tombstone_retention_days integer,
    started_at               timestamptz NOT NULL,
    finished_at              timestamptz,
    outcome                  text        NOT NULL CHECK (outcome IN ('running', 'done', 'unfinished', 'failed')),
    leads_deleted            bigint      NOT NULL DEFAULT 0,
    tombstones_deleted       bigint      NOT NULL DEFAULT 0,
    error                    text,
    last_done_at             timestamptz
);
