-- Yearly holidays kept as rules, and paused SLA clocks (SQLite). Keep in step with
-- ../postgres/0014_calendar_rules.sql. See docs/adr/0022-one-calendar.md.

-- A holiday that recurs every year (or every few years) on the same date, as
-- `embargo_domain::calendar::YearlyHoliday::to_text` writes it: never expanded to a number of
-- years, so it never runs out.
CREATE TABLE holiday_rules (
    rule        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The running clocks paused with time left while the report waits on its reporter
-- (`SlaRecord::paused_clocks`, one bit per clock): counted as pending by the metrics.
ALTER TABLE reports ADD COLUMN paused_clocks BIGINT NOT NULL DEFAULT 0;

-- Reports waiting on their reporter are looked at by the next SLA sweep, which sets it.
UPDATE reports SET next_sla_at = 0 WHERE needs_info_since IS NOT NULL;
