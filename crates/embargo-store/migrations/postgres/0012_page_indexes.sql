-- Indexes for the report page and the inbox at 100,000 reports (PostgreSQL). Keep in step with
-- ../sqlite/0012_page_indexes.sql. See docs/adr/0020-page-reads-at-scale.md.

-- The report page lists the reports split from this one: without an index that was a scan of
-- every report on each page view.
CREATE INDEX reports_split_from ON reports(split_from);

-- A reporter's other reports, with every column the inbox's "flagged" rule and the
-- need-to-know rule read (state, close reason, assignee, product, id): the flag of each inbox row
-- is answered from the index alone, without reading the reporter's report rows.
DROP INDEX reports_reporter;
CREATE INDEX reports_reporter ON reports(reporter_id, state, close_reason, assignee_id, product_id, id);
