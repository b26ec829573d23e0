-- The schema version of each piece of evidence (check.Evidence.Version), so
-- that Evaluate decodes stored evidence of an older shape explicitly (or
-- says unknown, reason evidence-version) instead of into zero values.
-- Rows stored before versioning read as version 0, which means 1.
ALTER TABLE evidence ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
