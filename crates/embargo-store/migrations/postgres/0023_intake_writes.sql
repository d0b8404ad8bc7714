-- Cheaper writes per received report (PostgreSQL). Keep in step with
-- ../sqlite/0023_intake_writes.sql. See docs/adr/0036-postgresql-intake-writes.md.
--
-- The index job writes 64 band rows per new report. Each row's foreign-key check looked the
-- report up again and locked it: about a third of the band insert's time, which was the
-- largest statement of a sustained SMTP intake run. Bands are derived data, rewritten by the
-- index job, and reports are never deleted: the constraint is dropped, the rows are kept.
ALTER TABLE report_bands DROP CONSTRAINT report_bands_report_id_fkey;

-- Every new report, and every update that moves it to a new row version (the index job's
-- signature), added an entry to each of the fifteen indexes on `reports`. Three of them look
-- up columns that are empty for almost every report (the assignee, the duplicate a report was
-- closed as, the report it was split from) and are only ever searched for a value: they now
-- hold only the rows that have one.
DROP INDEX reports_assignee;
CREATE INDEX reports_assignee ON reports(assignee_id) WHERE assignee_id IS NOT NULL;
DROP INDEX reports_duplicate_of;
CREATE INDEX reports_duplicate_of ON reports(duplicate_of) WHERE duplicate_of IS NOT NULL;
DROP INDEX reports_split_from;
CREATE INDEX reports_split_from ON reports(split_from) WHERE split_from IS NOT NULL;

-- Each job row is updated twice (claimed, done) and never removed: vacuum the table after 2 %
-- of its rows changed, not PostgreSQL's default 20 %, so that the claim and completion
-- statements do not walk the dead versions of a flood's jobs.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
