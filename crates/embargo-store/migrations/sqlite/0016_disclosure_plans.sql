-- The disclosure runbook (issue 16, ADR 24). Keep in step with ../postgres/0016_disclosure_plans.sql.
--
-- A plan per report (at most one that is not done or cancelled): the instant, whether it
-- is an emergency, what it will publish (sealed JSON: the texts, the push, the artifacts),
-- the hash of that content, and the second person's approval bound to the hash they saw.
-- Its steps, for the live run and for the latest rehearsal: state, times, the external ID
-- found or made, and when a call that may have taken effect was made (so that a lost
-- answer is reconciled, or put before a person, never sent twice), and the runner's job that
-- claimed it (a step is taken over only when that job's lease expired).

CREATE TABLE disclosure_plans (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id     BIGINT NOT NULL REFERENCES reports(id),
    state         TEXT NOT NULL CHECK (state IN ('draft', 'armed', 'running', 'stopped', 'done', 'cancelled')),
    disclose_at   BIGINT NOT NULL,
    emergency     BIGINT NOT NULL DEFAULT 0,
    content_enc   BLOB NOT NULL,
    content_hash  TEXT NOT NULL,
    planned_by    TEXT NOT NULL,
    -- Every identity that prepared or changed the plan, comma-separated: none may approve it.
    editors       TEXT NOT NULL DEFAULT '',
    approved_by   TEXT,
    approved_hash TEXT,
    approved_at   BIGINT,
    stop_reason   TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX disclosure_plans_live ON disclosure_plans(report_id)
    WHERE state IN ('draft', 'armed', 'running', 'stopped');
CREATE INDEX disclosure_plans_state ON disclosure_plans(state);

CREATE TABLE disclosure_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id     BIGINT NOT NULL REFERENCES disclosure_plans(id),
    run         TEXT NOT NULL CHECK (run IN ('live', 'rehearsal')),
    ordinal     BIGINT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'needs-person', 'skipped')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    claimed_by  BIGINT,
    called_at   BIGINT,
    started_at  BIGINT,
    finished_at BIGINT,
    external_id TEXT,
    detail      TEXT NOT NULL DEFAULT '',
    output_enc  BLOB,
    updated_at  BIGINT NOT NULL,
    UNIQUE (plan_id, run, name)
);

-- A fix repository is archived at the disclosure: read-only from then on.
ALTER TABLE fix_repositories ADD COLUMN archived_at BIGINT;
