-- Evaluation: business calendar, SLA clocks, assessment, catalogue, duplicates, reporter
-- history (SQLite). Keep in step with ../postgres/0003_evaluation.sql.

-- Holidays of the team's business calendar (admin-edited or imported from .ics). The
-- time zone and weekend days live in instance_meta under `calendar`.
CREATE TABLE holidays (
    day         TEXT PRIMARY KEY,          -- YYYY-MM-DD, the team's local date
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- SLA milestones (when each clock stopped) and deadlines (kept after the clock stops, so
-- "met" is milestone <= deadline). `next_sla_at` is the next instant the SLA sweep must
-- look at the report (a warning, a breach or the needs-info auto-close); NULL: nothing due.
ALTER TABLE reports ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE reports ADD COLUMN assessed_at BIGINT;
ALTER TABLE reports ADD COLUMN fixed_at BIGINT;
ALTER TABLE reports ADD COLUMN disclosed_at BIGINT;
ALTER TABLE reports ADD COLUMN closed_at BIGINT;
ALTER TABLE reports ADD COLUMN last_update_at BIGINT;
ALTER TABLE reports ADD COLUMN analyse_due_at BIGINT;
ALTER TABLE reports ADD COLUMN update_due_at BIGINT;
ALTER TABLE reports ADD COLUMN fix_due_at BIGINT;
ALTER TABLE reports ADD COLUMN needs_info_since BIGINT;
ALTER TABLE reports ADD COLUMN next_sla_at BIGINT;
CREATE INDEX reports_next_sla ON reports(next_sla_at);

-- Assessment: severity in clear (it drives fix targets and sorting); the CVSS vectors,
-- CWE, SSVC decision and affected versions sealed as one JSON document.
ALTER TABLE reports ADD COLUMN severity TEXT;
ALTER TABLE reports ADD COLUMN assessment_enc BLOB;
-- A report split off another (several findings in one report).
ALTER TABLE reports ADD COLUMN split_from BIGINT REFERENCES reports(id);
-- The near-duplicate signature (MinHash), sealed.
ALTER TABLE reports ADD COLUMN similarity_enc BLOB;

-- SLA warnings and escalations already raised: one per clock, kind and deadline.
CREATE TABLE sla_alerts (
    report_id  BIGINT NOT NULL REFERENCES reports(id),
    clock      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('warning', 'breach')),
    due_at     BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (report_id, clock, kind, due_at)
);

-- Near-duplicate candidates: keyed hashes of MinHash bands (no text can be recovered).
CREATE TABLE report_bands (
    band       TEXT NOT NULL,
    report_id  BIGINT NOT NULL REFERENCES reports(id),
    PRIMARY KEY (band, report_id)
);
CREATE INDEX report_bands_report ON report_bands(report_id);

-- Instance-local reporter history (how a reporter's reports turned out) is counted from
-- their reports' states.
CREATE INDEX reports_reporter ON reports(reporter_id, state);

-- The product catalogue: repository, ecosystem, package URL and supported release lines
-- (a JSON array of strings).
ALTER TABLE products ADD COLUMN repository_url TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN ecosystem TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN purl TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN release_lines TEXT NOT NULL DEFAULT '[]';
