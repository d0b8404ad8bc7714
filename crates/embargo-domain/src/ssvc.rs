//! SSVC (Stakeholder-Specific Vulnerability Categorization, CERT/CC): the supplier's
//! "Supplier Patch Development Priority" decision table 1.0.0 (`ssvc:DT_SP:1.0.0`).
//!
//! Four decision points, named as in the SSVC data (`namespace:key:version`):
//!
//! | decision point | id | values (key) |
//! |---|---|---|
//! | Exploitation | `ssvc:E:1.1.0` | None (N), Public PoC (P), Active (A) |
//! | Utility | `ssvc:U:1.0.1` | Laborious (L), Efficient (E), Super Effective (S) |
//! | Technical Impact | `ssvc:TI:1.0.0` | Partial (P), Total (T) |
//! | Public Safety Impact | `ssvc:PSI:2.0.1` | Minimal (M), Significant (S) |
//!
//! and the outcome `ssvc:DSOI:1.0.0` "Defer, Scheduled, Out-of-Cycle, Immediate" (D, S, O, I).
//! The 36-row table is encoded in [`supplier_priority`]; the tests check it against the CSV
//! and JSON published by CERT/CC (in `../shared/vectors/ssvc`).
//!
//! # Vector form
//!
//! The current SSVC data (schema 2.0.0) defines no vector string; its examples are JSON
//! selection lists. The archived computed examples use `SSVCv2/` followed by `key:value/`
//! pairs and an optional RFC 3339 timestamp, e.g.
//! `SSVCv2/E:A/A:N/T:T/P:M/B:A/M:M/D:A/2021-09-29T15:29:44Z/`. This module writes that form with
//! the *current* decision-point keys, in table order, the outcome last:
//! `SSVCv2/E:A/U:S/TI:T/PSI:S/DSOI:I/`. Parsing is strict: this order, each point once, the
//! outcome optional but, when present, equal to the table's; a timestamp optional; the
//! trailing `/` required.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

/// What every decision point type knows about itself.
pub trait DecisionPoint: Copy + Sized + 'static {
    /// `ssvc`.
    const NAMESPACE: &'static str;
    /// The short key, e.g. `E`.
    const KEY: &'static str;
    /// The version, e.g. `1.1.0`.
    const VERSION: &'static str;
    /// The display name, e.g. `Exploitation`.
    const NAME: &'static str;
    /// Every value, in the data's order.
    const ALL: &'static [Self];
    /// The value's key, e.g. `P`.
    fn key(self) -> &'static str;
    /// The value's name, e.g. `Public PoC`.
    fn name(self) -> &'static str;

    /// The id `namespace:key:version`, e.g. `ssvc:E:1.1.0`.
    fn id() -> String {
        format!("{}:{}:{}", Self::NAMESPACE, Self::KEY, Self::VERSION)
    }
    /// The value with this key.
    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.key() == key)
    }
    /// The value with this name, ignoring ASCII case (the CSV data writes names in lower case).
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(name))
    }
}

macro_rules! decision_point {
    ($(#[$meta:meta])* $ty:ident, $key:literal, $version:literal, $name:literal,
     { $($variant:ident => ($vkey:literal, $vname:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty { $($variant),+ }

        impl DecisionPoint for $ty {
            const NAMESPACE: &'static str = "ssvc";
            const KEY: &'static str = $key;
            const VERSION: &'static str = $version;
            const NAME: &'static str = $name;
            const ALL: &'static [Self] = &[$($ty::$variant),+];
            fn key(self) -> &'static str {
                match self { $($ty::$variant => $vkey),+ }
            }
            fn name(self) -> &'static str {
                match self { $($ty::$variant => $vname),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }
    };
}

decision_point!(
    /// The present state of exploitation of the vulnerability (`ssvc:E:1.1.0`).
    Exploitation, "E", "1.1.0", "Exploitation",
    { None => ("N", "None"), PublicPoc => ("P", "Public PoC"), Active => ("A", "Active") }
);
decision_point!(
    /// The usefulness of the exploit to the adversary (`ssvc:U:1.0.1`).
    Utility, "U", "1.0.1", "Utility",
    { Laborious => ("L", "Laborious"), Efficient => ("E", "Efficient"), SuperEffective => ("S", "Super Effective") }
);
decision_point!(
    /// The technical impact of the vulnerability (`ssvc:TI:1.0.0`).
    TechnicalImpact, "TI", "1.0.0", "Technical Impact",
    { Partial => ("P", "Partial"), Total => ("T", "Total") }
);
decision_point!(
    /// A coarse-grained representation of impact to public safety (`ssvc:PSI:2.0.1`).
    PublicSafetyImpact, "PSI", "2.0.1", "Public Safety Impact",
    { Minimal => ("M", "Minimal"), Significant => ("S", "Significant") }
);
decision_point!(
    /// The supplier's patch development priority (`ssvc:DSOI:1.0.0`).
    Priority, "DSOI", "1.0.0", "Defer, Scheduled, Out-of-Cycle, Immediate",
    { Defer => ("D", "Defer"), Scheduled => ("S", "Scheduled"), OutOfCycle => ("O", "Out-of-Cycle"), Immediate => ("I", "Immediate") }
);

/// The decision table's id.
pub const SUPPLIER_TABLE_ID: &str = "ssvc:DT_SP:1.0.0";

/// The Supplier Patch Development Priority 1.0.0 decision table.
pub fn supplier_priority(
    exploitation: Exploitation,
    utility: Utility,
    technical_impact: TechnicalImpact,
    public_safety_impact: PublicSafetyImpact,
) -> Priority {
    use Exploitation as E;
    use Priority::{Defer, Immediate, OutOfCycle, Scheduled};
    use PublicSafetyImpact::{Minimal as M, Significant as S};
    use TechnicalImpact::{Partial as P, Total as T};
    use Utility::{Efficient, Laborious, SuperEffective};
    match (exploitation, utility, technical_impact, public_safety_impact) {
        (E::None, Laborious, P, M) => Defer,
        (E::None, Laborious, P, S) => Scheduled,
        (E::None, Laborious, T, M) => Scheduled,
        (E::None, Laborious, T, S) => OutOfCycle,
        (E::None, Efficient, P, M) => Scheduled,
        (E::None, Efficient, P, S) => OutOfCycle,
        (E::None, Efficient, T, M) => Scheduled,
        (E::None, Efficient, T, S) => OutOfCycle,
        (E::None, SuperEffective, P, M) => Scheduled,
        (E::None, SuperEffective, P, S) => OutOfCycle,
        (E::None, SuperEffective, T, M) => OutOfCycle,
        (E::None, SuperEffective, T, S) => OutOfCycle,
        (E::PublicPoc, Laborious, P, M) => Scheduled,
        (E::PublicPoc, Laborious, P, S) => OutOfCycle,
        (E::PublicPoc, Laborious, T, M) => Scheduled,
        (E::PublicPoc, Laborious, T, S) => Immediate,
        (E::PublicPoc, Efficient, P, M) => Scheduled,
        (E::PublicPoc, Efficient, P, S) => Immediate,
        (E::PublicPoc, Efficient, T, M) => OutOfCycle,
        (E::PublicPoc, Efficient, T, S) => Immediate,
        (E::PublicPoc, SuperEffective, P, M) => OutOfCycle,
        (E::PublicPoc, SuperEffective, P, S) => Immediate,
        (E::PublicPoc, SuperEffective, T, M) => OutOfCycle,
        (E::PublicPoc, SuperEffective, T, S) => Immediate,
        (E::Active, Laborious, P, M) => OutOfCycle,
        (E::Active, Laborious, P, S) => Immediate,
        (E::Active, Laborious, T, M) => OutOfCycle,
        (E::Active, Laborious, T, S) => Immediate,
        (E::Active, Efficient, P, M) => OutOfCycle,
        (E::Active, Efficient, P, S) => Immediate,
        (E::Active, Efficient, T, M) => OutOfCycle,
        (E::Active, Efficient, T, S) => Immediate,
        (E::Active, SuperEffective, _, _) => Immediate,
    }
}

/// The four inputs of a supplier decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SupplierDecision {
    pub exploitation: Exploitation,
    pub utility: Utility,
    pub technical_impact: TechnicalImpact,
    pub public_safety_impact: PublicSafetyImpact,
}

/// Why a vector string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SsvcError {
    #[error("an SSVC vector starts with `SSVCv2/`")]
    Prefix,
    #[error("an SSVC vector ends with `/`")]
    Trailing,
    #[error("expected `{expected}:<value>` at segment {position}, found {found:?}")]
    Segment { position: usize, expected: &'static str, found: String },
    #[error("{point} has no value {value:?}")]
    Value { point: &'static str, value: String },
    #[error("the outcome {given} differs from the table's {computed}")]
    Outcome { given: &'static str, computed: &'static str },
    #[error("unexpected segment {0:?} at the end")]
    Extra(String),
}

impl SupplierDecision {
    /// The table's outcome.
    pub fn priority(&self) -> Priority {
        supplier_priority(self.exploitation, self.utility, self.technical_impact, self.public_safety_impact)
    }

    /// The vector with a timestamp, e.g. `SSVCv2/E:N/U:L/TI:P/PSI:M/DSOI:D/2026-11-26T10:00:00Z/`.
    pub fn vector_at(&self, timestamp: Timestamp) -> String {
        format!("{self}{timestamp}/")
    }

    /// Parses a vector (see the module documentation), returning its timestamp if it has one.
    pub fn parse_vector(text: &str) -> Result<(Self, Option<Timestamp>), SsvcError> {
        let body = text.strip_prefix("SSVCv2/").ok_or(SsvcError::Prefix)?;
        let body = body.strip_suffix('/').ok_or(SsvcError::Trailing)?;
        let mut segments = body.split('/').enumerate().peekable();
        fn value<P: DecisionPoint>(
            segments: &mut dyn Iterator<Item = (usize, &str)>,
            position: usize,
        ) -> Result<P, SsvcError> {
            let (_, segment) = segments.next().unwrap_or((position, ""));
            let found = segment.to_string();
            let raw = segment.strip_prefix(P::KEY).and_then(|s| s.strip_prefix(':')).ok_or(SsvcError::Segment {
                position,
                expected: P::KEY,
                found,
            })?;
            P::from_key(raw).ok_or_else(|| SsvcError::Value { point: P::NAME, value: raw.to_string() })
        }
        let decision = SupplierDecision {
            exploitation: value(&mut segments, 1)?,
            utility: value(&mut segments, 2)?,
            technical_impact: value(&mut segments, 3)?,
            public_safety_impact: value(&mut segments, 4)?,
        };
        let computed = decision.priority();
        if let Some((_, outcome)) = segments.next_if(|(_, s)| s.starts_with("DSOI:")) {
            let raw = &outcome["DSOI:".len()..];
            let given = Priority::from_key(raw)
                .ok_or_else(|| SsvcError::Value { point: Priority::NAME, value: raw.to_string() })?;
            if given != computed {
                return Err(SsvcError::Outcome { given: given.key(), computed: computed.key() });
            }
        }
        let timestamp = match segments.next() {
            None => None,
            Some((_, text)) => Some(text.parse::<Timestamp>().map_err(|_| SsvcError::Extra(text.to_string()))?),
        };
        if let Some((_, extra)) = segments.next() {
            return Err(SsvcError::Extra(extra.to_string()));
        }
        Ok((decision, timestamp))
    }
}

impl fmt::Display for SupplierDecision {
    /// The vector without a timestamp, e.g. `SSVCv2/E:A/U:S/TI:T/PSI:S/DSOI:I/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SSVCv2/E:{}/U:{}/TI:{}/PSI:{}/DSOI:{}/",
            self.exploitation.key(),
            self.utility.key(),
            self.technical_impact.key(),
            self.public_safety_impact.key(),
            self.priority().key()
        )
    }
}

impl FromStr for SupplierDecision {
    type Err = SsvcError;

    /// Parses a vector; a timestamp in it is accepted and dropped (see
    /// [`SupplierDecision::parse_vector`]).
    fn from_str(text: &str) -> Result<Self, SsvcError> {
        Self::parse_vector(text).map(|(decision, _)| decision)
    }
}

impl SupplierDecision {
    /// All 36 input combinations, in the table's row order.
    pub fn all() -> impl Iterator<Item = SupplierDecision> {
        Exploitation::ALL.iter().flat_map(|&exploitation| {
            Utility::ALL.iter().flat_map(move |&utility| {
                TechnicalImpact::ALL.iter().flat_map(move |&technical_impact| {
                    PublicSafetyImpact::ALL.iter().map(move |&public_safety_impact| SupplierDecision {
                        exploitation,
                        utility,
                        technical_impact,
                        public_safety_impact,
                    })
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_rows() {
        let d = |e, u, t, p| supplier_priority(e, u, t, p);
        use PublicSafetyImpact as Psi;
        use TechnicalImpact as Ti;
        assert_eq!(d(Exploitation::None, Utility::Laborious, Ti::Partial, Psi::Minimal), Priority::Defer);
        assert_eq!(d(Exploitation::PublicPoc, Utility::Efficient, Ti::Total, Psi::Minimal), Priority::OutOfCycle);
        assert_eq!(d(Exploitation::Active, Utility::SuperEffective, Ti::Partial, Psi::Minimal), Priority::Immediate);
        assert_eq!(SupplierDecision::all().count(), 36);
        assert_eq!(Exploitation::id(), "ssvc:E:1.1.0");
        assert_eq!(Utility::from_name("super effective"), Some(Utility::SuperEffective));
        assert_eq!(Priority::from_name("OUT-OF-CYCLE"), Some(Priority::OutOfCycle));
    }

    #[test]
    fn vectors_round_trip() {
        for decision in SupplierDecision::all() {
            let text = decision.to_string();
            assert_eq!(text.parse::<SupplierDecision>(), Ok(decision), "{text}");
            let at: Timestamp = "2021-09-29T15:29:44Z".parse().unwrap();
            assert_eq!(SupplierDecision::parse_vector(&decision.vector_at(at)), Ok((decision, Some(at))));
        }
        let active = SupplierDecision {
            exploitation: Exploitation::Active,
            utility: Utility::SuperEffective,
            technical_impact: TechnicalImpact::Total,
            public_safety_impact: PublicSafetyImpact::Significant,
        };
        assert_eq!(active.to_string(), "SSVCv2/E:A/U:S/TI:T/PSI:S/DSOI:I/");
        // The outcome may be left out.
        assert_eq!("SSVCv2/E:A/U:S/TI:T/PSI:S/".parse(), Ok(active));
    }

    #[test]
    fn vectors_are_strict() {
        let bad = [
            ("SSVC/E:A/U:S/TI:T/PSI:S/", SsvcError::Prefix),
            ("SSVCv2/E:A/U:S/TI:T/PSI:S", SsvcError::Trailing),
            ("SSVCv2/U:S/E:A/TI:T/PSI:S/", SsvcError::Segment { position: 1, expected: "E", found: "U:S".into() }),
            ("SSVCv2/E:X/U:S/TI:T/PSI:S/", SsvcError::Value { point: "Exploitation", value: "X".into() }),
            ("SSVCv2/E:A/U:S/TI:T/", SsvcError::Segment { position: 4, expected: "PSI", found: "".into() }),
            ("SSVCv2/E:A/U:S/", SsvcError::Segment { position: 3, expected: "TI", found: "".into() }),
            ("SSVCv2/E:A/U:S/TI:T/PSI:S/DSOI:D/", SsvcError::Outcome { given: "D", computed: "I" }),
            ("SSVCv2/E:A/U:S/TI:T/PSI:S/DSOI:I/then/", SsvcError::Extra("then".into())),
            ("SSVCv2/E:a/U:S/TI:T/PSI:S/", SsvcError::Value { point: "Exploitation", value: "a".into() }),
        ];
        for (text, error) in bad {
            assert_eq!(text.parse::<SupplierDecision>(), Err(error), "{text}");
        }
    }
}
