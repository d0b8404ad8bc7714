-- Who edited an advisory's revision under review (SQLite). Keep in step with
-- ../postgres/0008_advisory_editors.sql.
--
-- The two-person rule: nobody in this list approves the revision. An edit adds its actor;
-- a publication empties the list (the next revision starts with nobody's edits). Actors are
-- stored in their text form; the application compares them by identity (user:7, whatever
-- the role).

CREATE TABLE advisory_editors (
    advisory_id  BIGINT NOT NULL REFERENCES advisories(id),
    editor       TEXT NOT NULL,
    PRIMARY KEY (advisory_id, editor)
);

-- Advisories written before this table: their author is the one editor known.
INSERT INTO advisory_editors (advisory_id, editor)
SELECT id, created_by FROM advisories WHERE state <> 'published';
