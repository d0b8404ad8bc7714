-- Team app and reporter portal (PostgreSQL). Keep in step with ../sqlite/0002_team_app.sql.

-- Products the team is responsible for; a responder responsible for a product sees its
-- reports (need-to-know). The catalogue grows versions and package URLs later.
CREATE TABLE products (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE product_responders (
    product_id  BIGINT NOT NULL REFERENCES products(id),
    user_id     BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (product_id, user_id)
);

-- Assignment, product, the structured fields of the web form (sealed JSON), the
-- acknowledgement deadline, and the revocation of the reporter's status link.
ALTER TABLE reports ADD COLUMN assignee_id BIGINT REFERENCES users(id);
ALTER TABLE reports ADD COLUMN product_id BIGINT REFERENCES products(id);
ALTER TABLE reports ADD COLUMN details_enc BYTEA;
ALTER TABLE reports ADD COLUMN ack_due_at BIGINT;
ALTER TABLE reports ADD COLUMN status_revoked_at BIGINT;
CREATE INDEX reports_assignee ON reports(assignee_id);
CREATE INDEX reports_product ON reports(product_id);
CREATE INDEX reports_duplicate_of ON reports(duplicate_of);
CREATE INDEX reports_created ON reports(created_at, id);
-- Covers every inbox filter column, so that counting matching reports reads this small
-- index instead of the table's rows with their sealed content.
CREATE INDEX reports_inbox ON reports(state, product_id, assignee_id, ack_due_at, id);

-- Search without plaintext: keyed blind indexes of the words of a report's title, body
-- and reporter address. A query word is looked up by its index.
CREATE TABLE report_terms (
    term       TEXT NOT NULL,
    report_id  BIGINT NOT NULL REFERENCES reports(id),
    PRIMARY KEY (term, report_id)
);
CREATE INDEX report_terms_report ON report_terms(report_id);

-- TOTP (the secret sealed) and replay protection: the last accepted time step.
ALTER TABLE users ADD COLUMN totp_secret_enc BYTEA;
ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- Browser sessions: only a SHA-256 of the cookie value is kept. `stage` is `password`
-- between the password and the second factor, `full` after both.
CREATE TABLE sessions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    stage         TEXT NOT NULL CHECK (stage IN ('password', 'full')),
    user_agent    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Fixed-window counters for throttling (login failures, form submissions), in the
-- database so that limits hold across instances. Keys are hashes, never addresses.
CREATE TABLE rate_counters (
    key           TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- Anti-spam challenges of the reporter form that were spent (each works once).
CREATE TABLE spent_challenges (
    challenge_hash  TEXT PRIMARY KEY,
    expires_at      BIGINT NOT NULL
);

-- Messages that a reporter may see: inbound mail from them, outbound mail to them and
-- state-change notices. Internal notes never are.
ALTER TABLE messages ADD COLUMN visible_to_reporter BIGINT NOT NULL DEFAULT 0;
UPDATE messages SET visible_to_reporter = 1 WHERE kind IN ('inbound', 'outbound') AND quarantined = 0;

-- The report page shows a report's audit trail.
CREATE INDEX audit_log_subject ON audit_log(subject, seq);
