//! Identifiers: database ids as newtypes and the human reference ID of a report.

use std::fmt;
use std::str::FromStr;

/// Database identity of a report. Opaque outside the store; humans use [`ReferenceId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportId(pub i64);

/// Database identity of a team account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(pub i64);

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The configurable prefix of reference IDs, such as `EMB` in `EMB-2026-17`.
///
/// Invariant: 1 to 16 ASCII upper-case letters or digits, starting with a letter. The
/// restriction keeps reference IDs unambiguous in mail subjects and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferencePrefix(String);

/// Why a reference prefix or ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The prefix is empty, too long or uses characters other than `A-Z0-9`.
    #[error("reference prefix must be 1-16 characters A-Z or 0-9, starting with a letter, got {0:?}")]
    BadPrefix(String),
    /// The text is not of the form `PREFIX-YEAR-N`.
    #[error("reference ID must look like PREFIX-YEAR-N, got {0:?}")]
    BadReference(String),
}

impl ReferencePrefix {
    /// Validates and wraps a prefix.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let ok = !text.is_empty()
            && text.len() <= 16
            && text.starts_with(|c: char| c.is_ascii_uppercase())
            && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok { Ok(Self(text.to_owned())) } else { Err(ReferenceError::BadPrefix(text.to_owned())) }
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReferencePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A report's human reference, `<PREFIX>-<year>-<n>`: unique, and sequential per year.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceId {
    prefix: ReferencePrefix,
    year: i16,
    number: u32,
}

impl ReferenceId {
    /// Builds a reference from its parts. `number` starts at 1 each year.
    pub fn new(prefix: ReferencePrefix, year: i16, number: u32) -> Result<Self, ReferenceError> {
        if !(1970..=9999).contains(&year) || number == 0 {
            return Err(ReferenceError::BadReference(format!("{prefix}-{year}-{number}")));
        }
        Ok(Self { prefix, year, number })
    }

    /// The prefix part.
    pub fn prefix(&self) -> &ReferencePrefix {
        &self.prefix
    }

    /// The year part (the UTC year in which the report was received).
    pub fn year(&self) -> i16 {
        self.year
    }

    /// The sequence number within the year, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}-{}-{}", self.prefix, self.year, self.number))
    }
}

impl FromStr for ReferenceId {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ReferenceError::BadReference(text.to_owned());
        let mut parts = text.rsplitn(3, '-');
        let number = parts.next().ok_or_else(bad)?;
        let year = parts.next().ok_or_else(bad)?;
        let prefix = parts.next().ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(number) || !digits(year) || year.len() != 4 || number.starts_with('0') {
            return Err(bad());
        }
        let prefix = ReferencePrefix::parse(prefix).map_err(|_| bad())?;
        let year: i16 = year.parse().map_err(|_| bad())?;
        let number: u32 = number.parse().map_err(|_| bad())?;
        Self::new(prefix, year, number).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ids_round_trip_through_text() {
        let id: ReferenceId = "EMB-2026-17".parse().unwrap();
        assert_eq!(id.prefix().as_str(), "EMB");
        assert_eq!(id.year(), 2026);
        assert_eq!(id.number(), 17);
        assert_eq!(id.to_string(), "EMB-2026-17");
    }

    #[test]
    fn malformed_reference_ids_are_refused() {
        for bad in [
            "",
            "EMB",
            "EMB-2026",
            "emb-2026-1",
            "EMB-26-1",
            "EMB-2026-0",
            "EMB-2026-01",
            "EMB-2026-x",
            "-2026-1",
            "EMB--2026-1",
            "EMB-2026-1-",
            "EMB-2026-99999999999",
        ] {
            assert!(bad.parse::<ReferenceId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn prefixes_are_upper_case_alphanumeric() {
        assert!(ReferencePrefix::parse("SEC2").is_ok());
        assert!(ReferencePrefix::parse("2SEC").is_err());
        assert!(ReferencePrefix::parse("S-C").is_err());
        assert!(ReferencePrefix::parse("ABCDEFGHIJKLMNOPQ").is_err());
    }
}
