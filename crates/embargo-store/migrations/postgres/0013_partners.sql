-- Partners and early disclosure (PostgreSQL). Keep in step with ../sqlite/0013_partners.sql.
--
-- Partner organisations on lists, each list with its embargo policy; their contacts (an
-- account with the partner role each, an OpenPGP certificate each where known) and the
-- products they receive notices for. A report's embargo (one per report: its state and
-- date), the notices sent about it (the team's text and the patches, sealed), each contact's
-- copy with its delivery state, suspected leaks (sealed), and partner contacts' invitations.

CREATE TABLE partner_lists (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    max_embargo_hours  BIGINT NOT NULL,
    min_notice_hours   BIGINT NOT NULL,
    final_notice_hours BIGINT NOT NULL,
    preferred_days     TEXT NOT NULL,
    preferred_hour     BIGINT,
    created_at         BIGINT NOT NULL
);
-- The distros list's policy: at most 14 days, at least 7 days' notice, Tuesday to Thursday.
INSERT INTO partner_lists (name, max_embargo_hours, min_notice_hours, final_notice_hours, preferred_days,
    preferred_hour, created_at) VALUES ('default', 336, 168, 24, 'tue,wed,thu', 16, 0);

CREATE TABLE partners (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    list_id           BIGINT NOT NULL REFERENCES partner_lists(id),
    state             TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'removed')),
    terms_version     TEXT NOT NULL DEFAULT '',
    terms_accepted_at BIGINT,
    vouched_by        TEXT NOT NULL DEFAULT '',
    time_zone         TEXT NOT NULL DEFAULT 'UTC',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE partner_contacts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id  BIGINT NOT NULL REFERENCES partners(id),
    email       TEXT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    openpgp_key TEXT,
    fingerprint TEXT,
    created_at  BIGINT NOT NULL,
    removed_at  BIGINT,
    UNIQUE (partner_id, email)
);
CREATE INDEX partner_contacts_user ON partner_contacts(user_id);

CREATE TABLE partner_products (
    partner_id BIGINT NOT NULL REFERENCES partners(id),
    product_id BIGINT NOT NULL REFERENCES products(id),
    PRIMARY KEY (partner_id, product_id)
);

CREATE TABLE embargoes (
    report_id        BIGINT PRIMARY KEY REFERENCES reports(id),
    state            TEXT NOT NULL CHECK (state IN ('proposed', 'active', 'revised', 'lifted', 'broken')),
    disclose_at      BIGINT NOT NULL,
    first_notice_at  BIGINT,
    public_id        TEXT NOT NULL UNIQUE,
    announced_at     BIGINT,
    announced_severity TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX embargoes_announced ON embargoes(announced_at);

CREATE TABLE notices (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id      BIGINT NOT NULL REFERENCES reports(id),
    kind           TEXT NOT NULL CHECK (kind IN ('pre-notice', 'revision', 'broken', 'lifted')),
    state          TEXT NOT NULL CHECK (state IN ('draft', 'sent', 'superseded')),
    disclose_at    BIGINT NOT NULL,
    deploy_hosted  BIGINT NOT NULL DEFAULT 0,
    tell_customers BIGINT NOT NULL DEFAULT 0,
    confirmed_day  BIGINT NOT NULL DEFAULT 0,
    subject_enc    BYTEA NOT NULL,
    body_enc       BYTEA NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    edited_by      TEXT,
    edited_at      BIGINT,
    sent_by        TEXT,
    sent_at        BIGINT
);
CREATE INDEX notices_report ON notices(report_id, id);

CREATE TABLE notice_patches (
    notice_id BIGINT NOT NULL REFERENCES notices(id),
    line      TEXT NOT NULL,
    patch_enc BYTEA NOT NULL,
    sha256    TEXT NOT NULL,
    PRIMARY KEY (notice_id, line)
);

CREATE TABLE notice_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id       BIGINT NOT NULL REFERENCES notices(id),
    partner_id      BIGINT NOT NULL REFERENCES partners(id),
    contact_id      BIGINT NOT NULL REFERENCES partner_contacts(id),
    email           TEXT NOT NULL,
    encrypted       BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'bounced', 'seen', 'acknowledged')),
    message_id      TEXT NOT NULL UNIQUE,
    sent_at         BIGINT,
    bounced_at      BIGINT,
    seen_at         BIGINT,
    acknowledged_at BIGINT,
    reminded_at     BIGINT,
    UNIQUE (notice_id, contact_id)
);
CREATE INDEX notice_deliveries_contact ON notice_deliveries(contact_id);

CREATE TABLE partner_leaks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id   BIGINT NOT NULL REFERENCES reports(id),
    partner_id  BIGINT REFERENCES partners(id),
    recorded_by TEXT NOT NULL,
    details_enc BYTEA NOT NULL,
    decision    TEXT CHECK (decision IN ('keep', 'move', 'break')),
    decided_by  TEXT,
    decided_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX partner_leaks_partner ON partner_leaks(partner_id);

CREATE TABLE partner_invitations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT
);
