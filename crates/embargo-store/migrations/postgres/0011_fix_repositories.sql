-- Private fix repositories, their release lines and private CI (PostgreSQL). Keep in step with
-- ../sqlite/0011_fix_repositories.sql.
--
-- The git repository itself lives in the data directory (repositories/<report id>.git, see
-- ADR 19); these tables hold what Embargo knows about it: where it was seeded from, the
-- backport matrix (one row per release line) and the CI runs with their logs (sealed).

-- New roles: fix developers (this migration) and partners (next).
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'responder', 'fix-developer', 'partner'));

-- The product's test command, run by private CI on every push (empty: no CI).
ALTER TABLE products ADD COLUMN test_command TEXT NOT NULL DEFAULT '';

CREATE TABLE fix_repositories (
    report_id    BIGINT PRIMARY KEY REFERENCES reports(id),
    product_id   BIGINT NOT NULL REFERENCES products(id),
    -- The public repository it was seeded from (a URL or a local path).
    source_url   TEXT NOT NULL,
    -- The test command at the time of opening (the catalogue may change later).
    test_command TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);

-- The backport matrix: one row per release line of the product.
CREATE TABLE fix_lines (
    report_id      BIGINT NOT NULL REFERENCES fix_repositories(report_id),
    -- The public branch that carries the line (main, release-1.x); its fix branch is fix/<line>.
    line           TEXT NOT NULL,
    -- The public commit the fix branch started from.
    base           TEXT NOT NULL,
    -- The fix branch's head as last seen by Embargo (base until someone pushes).
    head           TEXT NOT NULL,
    -- Whether the line is affected at all (an unaffected line needs no fix).
    affected       BIGINT NOT NULL DEFAULT 1,
    -- The first affected version of the line ('' when unknown: 0).
    introduced     TEXT NOT NULL DEFAULT '',
    -- The version that will carry the fix ('' until decided).
    fixed_version  TEXT NOT NULL DEFAULT '',
    -- A person's reason to let the line be ready although its CI did not pass (audited).
    ci_override    TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (report_id, line)
);

-- Private CI runs: one per pushed head of a fix branch.
CREATE TABLE ci_runs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id    BIGINT NOT NULL REFERENCES fix_repositories(report_id),
    line         TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'passed', 'failed', 'timed-out')),
    -- How the command was isolated (bubblewrap, namespaces, none), once started.
    isolation    TEXT,
    exit_code    BIGINT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    UNIQUE (report_id, line, commit_sha)
);
CREATE INDEX ci_runs_report ON ci_runs(report_id, line, id);

-- A run's log, in sealed chunks appended while it runs (the page shows them live).
CREATE TABLE ci_log_chunks (
    run_id    BIGINT NOT NULL REFERENCES ci_runs(id),
    seq       BIGINT NOT NULL,
    chunk_enc BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The fix's discussion: what the team and the fix developers say about the fix (sealed;
-- fix developers see this, never the report's own thread).
CREATE TABLE fix_comments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id   BIGINT NOT NULL REFERENCES fix_repositories(report_id),
    author      TEXT NOT NULL,
    body_enc    BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX fix_comments_report ON fix_comments(report_id, id);

-- Invitations of fix developers: a one-time link to set a password (only its hash kept).
CREATE TABLE invitations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    report_id   BIGINT NOT NULL REFERENCES reports(id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT
);
