-- What was wrong with a received message (sqlite). Keep in step with ../postgres/0007_message_anomalies.sql.
--
-- Comma-separated stable codes, NULL when nothing was: malformed-mime (the MIME structure
-- was broken; the text shown may be recovered from a part), ambiguous-sender (several From
-- addresses), sender-mismatch (the From address differs from the envelope sender). Not
-- secret: they describe the message's form, never its content.
ALTER TABLE messages ADD COLUMN anomalies TEXT;
