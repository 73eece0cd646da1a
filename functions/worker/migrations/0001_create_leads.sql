-- The leads table. Placeholders in braces are filled with quoted identifiers by the runner
-- (functions/worker/migrate.py), so the schema and table name can be configured; a literal
-- brace must be doubled.
CREATE TABLE IF NOT EXISTS {leads_table} (
    lead_id          uuid        PRIMARY KEY,
    email            text        NOT NULL,
    first_name       text,
    last_name        text,
    phone            text,
    company          text,
    job_title        text,
    country          char(2),
    campaign         text,
    landing_page     text,
    utm_source       text,
    utm_medium       text,
    utm_campaign     text,
    utm_term         text,
    utm_content      text,
    consent          boolean     NOT NULL DEFAULT false,
    custom           jsonb       NOT NULL DEFAULT '{{}}'::jsonb,
    source           jsonb       NOT NULL DEFAULT '{{}}'::jsonb,
    envelope_version smallint    NOT NULL,
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now()
);

-- "Leads of campaign X this week", the marketing team's first question.
CREATE INDEX IF NOT EXISTS {campaign_received_at_index} ON {leads_table} (campaign, received_at);
-- Look-ups and erasure requests by person.
CREATE INDEX IF NOT EXISTS {email_index} ON {leads_table} (email);
-- Exports and "what came in the last hour" without a sequential scan.
CREATE INDEX IF NOT EXISTS {received_at_index} ON {leads_table} (received_at);
