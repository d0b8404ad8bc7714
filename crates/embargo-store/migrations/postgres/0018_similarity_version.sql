-- Near-duplicate signatures carry the version of the method that computed them (PostgreSQL).
-- Keep in step with ../sqlite/0018_similarity_version.sql. See
-- docs/adr/0027-near-duplicates-by-weighted-terms.md.
--
-- Version 1 was a MinHash of words (issue 20 measured its recall at 1 of 8); version 2 is a
-- vector of hashed terms compared by a TF-IDF cosine. A report indexed by an older version is
-- re-indexed in the background (the `report.similarity_reindex` job), found through this
-- column without opening any sealed signature. NULL: not indexed yet.
ALTER TABLE reports ADD COLUMN similarity_version BIGINT;
UPDATE reports SET similarity_version = 1 WHERE similarity_enc IS NOT NULL;
CREATE INDEX reports_similarity_version ON reports(similarity_version, id);
