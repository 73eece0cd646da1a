-- The newest tombstone, read once per batch: a batch whose leads were all received after it needs no
-- per-row erasure look-up (functions/worker/repository.py). An index makes that read one page.
CREATE INDEX IF NOT EXISTS {erasures_erased_at_index} ON {erasures_table} (erased_at);
