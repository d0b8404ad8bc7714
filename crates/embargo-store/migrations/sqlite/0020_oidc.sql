-- Single sign-on with OpenID Connect (sqlite). Keep in step with ../postgres/0020_oidc.sql.
-- See docs/adr/0029-single-sign-on-with-openid-connect.md.

-- An account's identity at an OpenID provider: linked by (issuer, subject), never by
-- e-mail. `email` is what the provider said when it was linked, for people to read.
CREATE TABLE oidc_identities (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    email         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    UNIQUE (issuer, subject),
    UNIQUE (user_id, issuer)
);

-- A sign-in under way at the provider: the `state` (hashed) with the browser it belongs to
-- (the hash of a cookie set when it started), what it is for (`sign-in`, `link` from a
-- signed-in session, or accepting an invitation), the nonce and PKCE verifier (sealed), and
-- its expiry. Used once: `used_at` is set by the callback that takes it.
CREATE TABLE oidc_flows (
    state_hash    TEXT PRIMARY KEY,
    browser_hash  TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    user_id       BIGINT REFERENCES users(id),
    session_id    BIGINT,
    invitation    TEXT,
    next_path     TEXT,
    secrets_enc   BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX oidc_flows_expires ON oidc_flows(expires_at);
