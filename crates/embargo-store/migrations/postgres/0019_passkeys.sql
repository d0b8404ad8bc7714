-- Passkeys (WebAuthn) as a second factor and for password-less sign-in (PostgreSQL).
-- Keep in step with ../sqlite/0019_passkeys.sql. See docs/adr/0028-passkeys.md.

-- The user handle given to authenticators (a random UUID, never the address or the id), and
-- whether an admin requires this account to sign in with a passkey.
ALTER TABLE users ADD COLUMN passkey_handle TEXT;
ALTER TABLE users ADD COLUMN passkey_required BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_passkey_handle ON users(passkey_handle);

-- An account's passkeys. `credential` is the verifier's stored credential (JSON: the public
-- key as COSE, the algorithm, flags); the public key is not a secret. `credential_id` is the
-- authenticator's credential ID (base64url), unique across accounts. `sign_count` is the
-- authenticator's signature counter, which may only grow (a counter that goes back is a
-- cloned authenticator: refused and audited).
CREATE TABLE passkeys (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    credential_id TEXT NOT NULL UNIQUE,
    credential    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL,
    transports    TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- A WebAuthn ceremony under way: the verifier's state (its challenge) kept on the server,
-- used once (taken by deleting the row), bound by `ceremony_key` to the session that
-- started it (`session:<id>:<purpose>`) or, before any session exists, to the hash of a
-- cookie (`login:<hash>`), and valid until `expires_at`.
CREATE TABLE webauthn_ceremonies (
    ceremony_key TEXT NOT NULL PRIMARY KEY,
    purpose      TEXT NOT NULL CHECK (purpose IN ('register', 'second-factor', 'passwordless')),
    user_id      BIGINT REFERENCES users(id),
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
