-- Public advisory IDs are assigned at publication (SQLite). Keep in step with
-- ../postgres/0015_advisory_public_ids.sql. See docs/adr/0023-advisory-numbering-and-withdrawal.md.
--
-- advisories.advisory_id is from now on the advisory's internal handle (DRAFT-YYYY-NNNN for
-- new drafts and imports, numbered by advisory_handles); public_id is its public ID
-- (PREFIX-YYYY-NNNN, numbered by advisory_counters), set when it is first published, so that
-- the public sequence has no gaps and reveals nothing about drafts.
ALTER TABLE advisories ADD COLUMN public_id TEXT;
CREATE UNIQUE INDEX advisories_public_id ON advisories(public_id) WHERE public_id IS NOT NULL;

CREATE TABLE advisory_handles (
    year  BIGINT PRIMARY KEY,
    last  BIGINT NOT NULL
);

-- Advisories published before: their ID was both handle and public ID.
UPDATE advisories SET public_id = advisory_id
WHERE id IN (SELECT advisory_id FROM advisory_publications);
