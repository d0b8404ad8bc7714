//! CWE identifiers (Common Weakness Enumeration), such as `CWE-79`.
//!
//! Accepted text is exactly `CWE-` (upper case) followed by 1 to 6 decimal digits without a
//! leading zero (so `CWE-0` is not an identifier either: MITRE numbers from 1). No spaces, no
//! signs, no other case. Whether the number names an existing entry is not checked here.

use std::fmt;
use std::str::FromStr;

/// A CWE identifier: a number from 1 to 999 999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CweId(u32);

/// Why a text is not a CWE identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CweError {
    #[error("a CWE identifier starts with `CWE-`")]
    Prefix,
    #[error("a CWE identifier is `CWE-` and 1 to 6 digits without a leading zero")]
    Number,
}

impl CweId {
    /// The largest accepted number.
    pub const MAX: u32 = 999_999;

    /// The identifier for `number`, if it is in 1..=999 999.
    pub const fn new(number: u32) -> Option<Self> {
        if number >= 1 && number <= Self::MAX { Some(CweId(number)) } else { None }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for CweId {
    type Err = CweError;

    fn from_str(text: &str) -> Result<Self, CweError> {
        let digits = text.strip_prefix("CWE-").ok_or(CweError::Prefix)?;
        let bytes = digits.as_bytes();
        if bytes.is_empty() || bytes.len() > 6 || bytes[0] == b'0' || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(CweError::Number);
        }
        digits.parse().ok().and_then(CweId::new).ok_or(CweError::Number)
    }
}

impl fmt::Display for CweId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CWE-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_canonical_identifiers() {
        for (text, number) in [("CWE-79", 79), ("CWE-1", 1), ("CWE-1321", 1321), ("CWE-999999", 999_999)] {
            let id: CweId = text.parse().unwrap();
            assert_eq!(id.get(), number);
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for text in ["cwe-79", "Cwe-79", "CWE79", "79", "CWE-", "CWE-0"] {
            assert!(text.parse::<CweId>().is_err(), "{text}");
        }
        for text in ["CWE-079", "CWE-1000000", "CWE-+79", "CWE--79", "CWE- 79", "CWE-79 ", " CWE-79", "CWE-７９"] {
            assert!(text.parse::<CweId>().is_err(), "{text}");
        }
        assert_eq!("cwe-79".parse::<CweId>(), Err(CweError::Prefix));
        assert_eq!("CWE-079".parse::<CweId>(), Err(CweError::Number));
        assert_eq!(CweId::new(0), None);
        assert_eq!(CweId::new(1_000_000), None);
    }

    proptest! {
        #[test]
        fn display_round_trips(number in 1u32..=999_999) {
            let id = CweId::new(number).unwrap();
            prop_assert_eq!(id.to_string().parse::<CweId>(), Ok(id));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,12}") {
            if let Ok(id) = text.parse::<CweId>() {
                prop_assert_eq!(id.to_string(), text);
            }
        }
    }
}
