-- External effects as intents (PostgreSQL). Keep in step with ../sqlite/0006_intents.sql.
--
-- Before Embargo calls another service (CVE Services today; mailing lists, Mastodon and
-- git hosts with the disclosure runbook), it records what it is about to do here, in the
-- transaction of the decision (with its permission check and audit entry); the call runs
-- as a job; the result is recorded after. A retry first asks the service whether the effect
-- already happened (reconciles) and calls again only when it did not. No content is stored:
-- the content hash says which content the call was for.

CREATE TABLE external_intents (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique per effect: a second request for the same effect finds this row.
    idempotency_key TEXT NOT NULL UNIQUE,
    -- What kind of effect (cve.publish, cve.update, ...).
    operation       TEXT NOT NULL,
    -- Where it goes, as the service names it (cve-services:CVE-2026-1234).
    destination     TEXT NOT NULL,
    -- SHA-256 (hex) of the exact content to send.
    content_hash    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    -- What the service answered or what reconciling found (no content), once known.
    result          TEXT,
    -- Who asked (actor text).
    requested_by    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- At most one effect in flight per destination: a new request waits for (or reconciles)
-- the one before it.
CREATE UNIQUE INDEX external_intents_pending ON external_intents(destination) WHERE state = 'pending';
