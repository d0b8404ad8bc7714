//! Working-day arithmetic for SLA deadlines.
//!
//! A deadline of N working days from an instant is the same local time of day on the Nth
//! working day after it, in the team's time zone; Saturdays and Sundays are not working
//! days. (Team holiday calendars build on this.)

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The instant `days` working days after `start`, in time zone `tz`.
pub fn add_working_days(start: Timestamp, days: u32, tz: &TimeZone) -> Timestamp {
    let zoned = start.to_zoned_datetime(tz.clone());
    let mut date = zoned.date();
    let mut left = days;
    while left > 0 {
        date = date.checked_add(1.day()).unwrap_or(date);
        if !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    // The same wall-clock time on that date; across a DST change jiff picks the compatible
    // instant (the later one in a gap, the earlier in a fold).
    date.to_datetime(zoned.time()).to_zoned_datetime(tz.clone()).map(|z| z.timestamp()).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn weekends_do_not_count() {
        let utc = TimeZone::UTC;
        // Friday + 1 working day = Monday.
        assert_eq!(add_working_days(at("2026-11-27T10:00:00Z"), 1, &utc), at("2026-11-30T10:00:00Z"));
        // Saturday + 1 = Monday; Wednesday + 10 = two weeks later.
        assert_eq!(add_working_days(at("2026-11-28T10:00:00Z"), 1, &utc), at("2026-11-30T10:00:00Z"));
        assert_eq!(add_working_days(at("2026-11-25T10:00:00Z"), 10, &utc), at("2026-12-09T10:00:00Z"));
        assert_eq!(add_working_days(at("2026-11-25T10:00:00Z"), 0, &utc), at("2026-11-25T10:00:00Z"));
    }

    #[test]
    fn local_time_is_kept_across_dst() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // Friday 2026-10-23 09:00 CEST (07:00Z) + 5 working days = Friday 2026-10-30 09:00 CET (08:00Z).
        assert_eq!(add_working_days(at("2026-10-23T07:00:00Z"), 5, &paris), at("2026-10-30T08:00:00Z"));
    }
}
