-- Advisories (SQLite). Keep in step with ../postgres/0004_advisories.sql.
--
-- Drafts are private: the record is sealed, and nothing here is read by a public route.
-- What is published is public by definition and is kept, computed and signed, in
-- advisory_publications: the only advisory table that public routes and feeds read.

CREATE TABLE advisories (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Our identifier, PREFIX-YYYY-NNNN (private until published).
    advisory_id   TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('draft', 'in-review', 'approved', 'published', 'withdrawn')),
    -- The advisory record (embargo_advisory::AdvisoryRecord) as JSON, sealed.
    record_enc    BLOB NOT NULL,
    created_by    TEXT NOT NULL,
    -- Who asked for review and who approved (a second person).
    submitted_by  TEXT,
    approved_by   TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX advisories_state ON advisories(state, updated_at);

CREATE TABLE advisory_counters (
    year  BIGINT PRIMARY KEY,
    last  BIGINT NOT NULL
);

-- The reports an advisory covers.
CREATE TABLE advisory_reports (
    advisory_id  BIGINT NOT NULL REFERENCES advisories(id),
    report_id    BIGINT NOT NULL REFERENCES reports(id),
    PRIMARY KEY (advisory_id, report_id)
);
CREATE INDEX advisory_reports_report ON advisory_reports(report_id);

-- Each published revision, with every output as served.
CREATE TABLE advisory_publications (
    advisory_id     BIGINT NOT NULL REFERENCES advisories(id),
    revision        BIGINT NOT NULL,
    public_id       TEXT NOT NULL,
    cve_id          TEXT,
    title           TEXT NOT NULL,
    published_at    BIGINT NOT NULL,
    modified_at     BIGINT NOT NULL,
    osv             TEXT NOT NULL,
    cve_record      TEXT,
    csaf            TEXT NOT NULL,
    csaf_filename   TEXT NOT NULL,
    csaf_signature  TEXT NOT NULL,
    markdown        TEXT NOT NULL,
    html            TEXT NOT NULL,
    PRIMARY KEY (advisory_id, revision)
);
CREATE INDEX advisory_publications_public ON advisory_publications(public_id, revision);
CREATE INDEX advisory_publications_modified ON advisory_publications(modified_at);
