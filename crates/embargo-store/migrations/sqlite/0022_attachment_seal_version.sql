-- Attachments' sealed values are bound to their row (SQLite). Keep in step with
-- ../postgres/0022_attachment_seal_version.sql. See docs/adr/0031-hardening.md.
--
-- Version 1 sealed an attachment's file name, media type and content with associated data
-- naming only its report (`attachments.data:<report id>`), so two attachments' ciphertexts
-- could be swapped between rows of one report without either failing to open. Version 2
-- names the row too (`attachments.data:v2:<report id>:<attachment id>:<message id>`).
-- SQL cannot re-seal; the `attachment.reseal` job does, in the background, after the first
-- start of a worker (found through this column without opening anything). Until then a
-- version-1 row opens as before.
ALTER TABLE attachments ADD COLUMN seal_version BIGINT NOT NULL DEFAULT 1;
-- Only the rows still to re-seal are indexed, so the index is empty once the job is done.
CREATE INDEX attachments_to_reseal ON attachments(id) WHERE seal_version = 1;
