-- Cheaper writes per received report (SQLite). Keep in step with
-- ../postgres/0023_intake_writes.sql. See docs/adr/0036-postgresql-intake-writes.md.
--
-- Band rows are derived data without a foreign key (reports are never deleted): SQLite
-- cannot drop a constraint, so the table is rebuilt with its rows.
CREATE TABLE report_bands_new (
    band       TEXT NOT NULL,
    report_id  BIGINT NOT NULL,
    PRIMARY KEY (band, report_id)
);
INSERT INTO report_bands_new (band, report_id) SELECT band, report_id FROM report_bands;
DROP TABLE report_bands;
ALTER TABLE report_bands_new RENAME TO report_bands;
CREATE INDEX report_bands_report ON report_bands(report_id);

-- Indexes of columns that are empty for almost every report hold only the rows with a value.
DROP INDEX reports_assignee;
CREATE INDEX reports_assignee ON reports(assignee_id) WHERE assignee_id IS NOT NULL;
DROP INDEX reports_duplicate_of;
CREATE INDEX reports_duplicate_of ON reports(duplicate_of) WHERE duplicate_of IS NOT NULL;
DROP INDEX reports_split_from;
CREATE INDEX reports_split_from ON reports(split_from) WHERE split_from IS NOT NULL;

-- (The jobs table's vacuum settings are PostgreSQL's; SQLite has no autovacuum to tune.)
