-- Foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql: the same
-- tables, columns and meanings; only types and identity columns differ.
--
-- Conventions:
--   * times are BIGINT Unix milliseconds (UTC);
--   * columns ending in `_enc` hold values sealed by embargo-crypto (never plaintext);
--   * columns ending in `_index` hold keyed blind indexes (HMAC) of sealed values.

-- Instance-wide facts (schema owner, first-start markers). Never confidential.
CREATE TABLE instance_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- People who report. Their identity is confidential: the address is sealed and found
-- again through its blind index.
CREATE TABLE reporters (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_index   TEXT NOT NULL UNIQUE,
    email_enc     BYTEA NOT NULL,
    name_enc      BYTEA,
    -- The reporter's OpenPGP certificate, once imported: mail to them is then encrypted.
    openpgp_key_enc  BYTEA,
    created_at    BIGINT NOT NULL
);

-- The last reference number handed out per year (reference IDs are PREFIX-YEAR-N).
CREATE TABLE reference_counters (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

-- Team accounts.
CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'responder')),
    password_hash  TEXT,
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

-- API tokens: only a SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    token_hash    TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

-- One-time links, such as the first-admin link printed at first start (hashed).
CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- Reports. State and reason are plain (needed for filtering and SLAs); content is sealed.
CREATE TABLE reports (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference     TEXT NOT NULL UNIQUE,
    ref_year      BIGINT NOT NULL,
    ref_number    BIGINT NOT NULL,
    state         TEXT NOT NULL,
    close_reason  TEXT,
    duplicate_of  BIGINT REFERENCES reports(id),
    channel       TEXT NOT NULL,
    reporter_id   BIGINT NOT NULL REFERENCES reporters(id),
    title_enc     BYTEA NOT NULL,
    body_enc      BYTEA NOT NULL,
    -- The token in the report's reply address (security+<token>@domain); not secret,
    -- replies to it from anyone but the reporter are quarantined.
    reply_token   TEXT NOT NULL UNIQUE,
    -- The reporter's status link: its hash for lookup, the link itself sealed (it is a
    -- credential) so that mail jobs can include it.
    status_token_hash  TEXT NOT NULL UNIQUE,
    status_token_enc   BYTEA NOT NULL,
    -- When the flaw is in a dependency: the upstream project and its security contact,
    -- sealed together (they reveal what is affected before disclosure).
    upstream_enc  BYTEA,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (ref_year, ref_number)
);
CREATE INDEX reports_state ON reports(state, created_at);

-- Team members given access to a report (need-to-know).
CREATE TABLE report_members (
    report_id  BIGINT NOT NULL REFERENCES reports(id),
    user_id    BIGINT NOT NULL REFERENCES users(id),
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (report_id, user_id)
);

-- Every lifecycle move, with its actor and time.
CREATE TABLE report_transitions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id     BIGINT NOT NULL REFERENCES reports(id),
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    close_reason  TEXT,
    duplicate_of  BIGINT REFERENCES reports(id),
    actor         TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX report_transitions_report ON report_transitions(report_id, id);

-- Messages on a report: mail in and out, web submissions, internal notes.
CREATE TABLE messages (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id         BIGINT NOT NULL REFERENCES reports(id),
    kind              TEXT NOT NULL CHECK (kind IN ('inbound', 'outbound', 'note')),
    author            TEXT NOT NULL,
    sender_enc        BYTEA,
    subject_enc       BYTEA,
    body_enc          BYTEA NOT NULL,
    raw_enc           BYTEA,
    message_id_index  TEXT,
    -- 1 when mail reached the report's reply address from someone other than the reporter:
    -- kept for the team, never treated as the reporter's words.
    quarantined       BIGINT NOT NULL DEFAULT 0,
    -- OpenPGP at intake: NULL for plain mail, else pgp-mime / pgp-inline (+signed) or
    -- undecryptable.
    pgp               TEXT,
    -- Sender authentication of mail received over SMTP: "dkim=pass spf=pass dmarc=pass".
    auth_results      TEXT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX messages_report ON messages(report_id, id);
CREATE INDEX messages_message_id ON messages(message_id_index);

-- Attachments, sealed whole. The size is kept plain for limits and display.
CREATE TABLE attachments (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id     BIGINT NOT NULL REFERENCES reports(id),
    message_id    BIGINT REFERENCES messages(id),
    filename_enc  BYTEA NOT NULL,
    media_type_enc BYTEA NOT NULL,
    size          BIGINT NOT NULL,
    data_enc      BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX attachments_report ON attachments(report_id);

-- The append-only, hash-chained audit trail. `seq` has no gaps; see embargo_domain::audit.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- The chain's head: the last entry's number and hash, in its own row so that appends
-- serialise on it and truncation of the tail is detectable.
CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Durable jobs for every external side effect. A job is claimed with a lease; a worker
-- that dies loses its lease and another worker takes the job over.
CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    idempotency_key  TEXT UNIQUE,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    run_at           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(state, run_at);

-- Effects of the diagnostic probe job (`embargo jobs probe`): one row per completed run.
CREATE TABLE job_probes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    BIGINT NOT NULL,
    worker    TEXT NOT NULL,
    attempt   BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
