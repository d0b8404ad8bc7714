-- Offboarding and account recovery (PostgreSQL). Keep in step with ../sqlite/0010_offboarding.sql.

-- A deleted account keeps its row, anonymised (address replaced, password, second factor
-- and access removed), so that the audit trail, transitions and messages it authored stay
-- attributed to the same id.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- One-time recovery codes, used in place of a TOTP code: only a SHA-256 of each is kept
-- (80 random bits each). A new set replaces the old one.
CREATE TABLE recovery_codes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    code_hash   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);
