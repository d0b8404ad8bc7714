-- A product's release settings (the disclosure runbook's "merge and push" and "binaries"
-- steps, ADR 26) and the release builds Embargo ran (SQLite). Keep in step with
-- ../postgres/0017_release.sql.

-- Where the release's files and SHA256SUMS appear (may hold {version}); '' for none.
ALTER TABLE products ADD COLUMN artifacts_url TEXT NOT NULL DEFAULT '';
-- The file names expected there, a JSON array (names may hold {version}).
ALTER TABLE products ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
-- A local directory served at artifacts_url, where the release command's dist/ files are
-- published (may hold {version}); '' for none.
ALTER TABLE products ADD COLUMN artifacts_dir TEXT NOT NULL DEFAULT '';
-- The release build: a command run in the sandbox on a checkout of the pushed tag, and/or a
-- signed webhook to an external CI; '' for none.
ALTER TABLE products ADD COLUMN release_command TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN release_webhook TEXT NOT NULL DEFAULT '';
-- The release tag's name from the fixed version.
ALTER TABLE products ADD COLUMN tag_format TEXT NOT NULL DEFAULT 'v{version}';
-- An armored OpenPGP certificate that signs SHA256SUMS ('' for none).
ALTER TABLE products ADD COLUMN signing_key TEXT NOT NULL DEFAULT '';

-- Release commands Embargo ran: one per release line and tag, with the sealed log.
CREATE TABLE release_builds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id    BIGINT NOT NULL REFERENCES reports(id),
    line         TEXT NOT NULL,
    tag          TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('running', 'passed', 'failed', 'timed-out')),
    -- How the command was isolated (bubblewrap, namespaces, none).
    isolation    TEXT,
    exit_code    BIGINT,
    log_enc      BLOB,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX release_builds_report ON release_builds(report_id, id);
