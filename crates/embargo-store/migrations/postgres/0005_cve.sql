-- CVE IDs reserved at CVE Services (PostgreSQL). Keep in step with ../sqlite/0005_cve.sql.
--
-- A row exists only because a person reserved the ID (embargo cve reserve): nothing
-- reserves IDs by itself. The ID and its state are not secret (CVE Services shows them);
-- which advisory an ID is for is private until that advisory is published.

CREATE TABLE cve_ids (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- CVE-YYYY-NNNN.
    cve_id       TEXT NOT NULL UNIQUE,
    -- As CVE Services says: RESERVED, PUBLISHED or REJECTED.
    state        TEXT NOT NULL CHECK (state IN ('RESERVED', 'PUBLISHED', 'REJECTED')),
    -- The advisory it is assigned to (advisories.id), once assigned; one ID per advisory.
    advisory     BIGINT REFERENCES advisories(id),
    reserved_by  TEXT NOT NULL,
    reserved_at  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX cve_ids_advisory ON cve_ids(advisory) WHERE advisory IS NOT NULL;
CREATE INDEX cve_ids_state ON cve_ids(state, cve_id);
