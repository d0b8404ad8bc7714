//! CVSS 3.1 and 4.0 vectors: strict parsing, canonical form and scores.
//!
//! The vector string is the source of truth; scores are always derived from it. Parsing here is
//! deliberately stricter than the `cvss` crate, which does the arithmetic: the crate accepts
//! lower-case metric names and out-of-order 4.0 metrics, which the FIRST reference data treats
//! as invalid. So every vector is validated against the specification's metric tables first and
//! handed to the crate only in canonical form.
//!
//! Rules:
//! - the prefix is exactly `CVSS:3.1/` or `CVSS:4.0/` (3.0 is refused with the reason: see
//!   [`CvssError::Prefix`]);
//! - metric names and values are case-sensitive;
//! - no unknown metric, no unknown value, no duplicate, no empty component;
//! - every base metric is present;
//! - 4.0 metrics must appear in the specification's order; 3.1 metrics may come in any order
//!   but are shown in the specification's order (`Display`).
//!
//! Severity bands (both versions): None 0.0, Low 0.1–3.9, Medium 4.0–6.9, High 7.0–8.9,
//! Critical 9.0–10.0.

use std::fmt;
use std::str::FromStr;

/// One metric of a version's table.
struct MetricDef {
    name: &'static str,
    values: &'static [&'static str],
    group: Group,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Base,
    /// Temporal (3.1) or Threat (4.0).
    Temporal,
    Environmental,
    Supplemental,
}

const fn m(name: &'static str, values: &'static [&'static str], group: Group) -> MetricDef {
    MetricDef { name, values, group }
}

/// CVSS 3.1, in the order of the specification's vector string (section 6, Table 15).
const V31_METRICS: &[MetricDef] = &[
    m("AV", &["N", "A", "L", "P"], Group::Base),
    m("AC", &["L", "H"], Group::Base),
    m("PR", &["N", "L", "H"], Group::Base),
    m("UI", &["N", "R"], Group::Base),
    m("S", &["U", "C"], Group::Base),
    m("C", &["H", "L", "N"], Group::Base),
    m("I", &["H", "L", "N"], Group::Base),
    m("A", &["H", "L", "N"], Group::Base),
    m("E", &["X", "H", "F", "P", "U"], Group::Temporal),
    m("RL", &["X", "U", "W", "T", "O"], Group::Temporal),
    m("RC", &["X", "C", "R", "U"], Group::Temporal),
    m("CR", &["X", "H", "M", "L"], Group::Environmental),
    m("IR", &["X", "H", "M", "L"], Group::Environmental),
    m("AR", &["X", "H", "M", "L"], Group::Environmental),
    m("MAV", &["X", "N", "A", "L", "P"], Group::Environmental),
    m("MAC", &["X", "L", "H"], Group::Environmental),
    m("MPR", &["X", "N", "L", "H"], Group::Environmental),
    m("MUI", &["X", "N", "R"], Group::Environmental),
    m("MS", &["X", "U", "C"], Group::Environmental),
    m("MC", &["X", "H", "L", "N"], Group::Environmental),
    m("MI", &["X", "H", "L", "N"], Group::Environmental),
    m("MA", &["X", "H", "L", "N"], Group::Environmental),
];

/// CVSS 4.0, in the order of the specification's vector string (section 7, Table 23).
const V40_METRICS: &[MetricDef] = &[
    m("AV", &["N", "A", "L", "P"], Group::Base),
    m("AC", &["L", "H"], Group::Base),
    m("AT", &["N", "P"], Group::Base),
    m("PR", &["N", "L", "H"], Group::Base),
    m("UI", &["N", "P", "A"], Group::Base),
    m("VC", &["H", "L", "N"], Group::Base),
    m("VI", &["H", "L", "N"], Group::Base),
    m("VA", &["H", "L", "N"], Group::Base),
    m("SC", &["H", "L", "N"], Group::Base),
    m("SI", &["H", "L", "N"], Group::Base),
    m("SA", &["H", "L", "N"], Group::Base),
    m("E", &["X", "A", "P", "U"], Group::Temporal),
    m("CR", &["X", "H", "M", "L"], Group::Environmental),
    m("IR", &["X", "H", "M", "L"], Group::Environmental),
    m("AR", &["X", "H", "M", "L"], Group::Environmental),
    m("MAV", &["X", "N", "A", "L", "P"], Group::Environmental),
    m("MAC", &["X", "L", "H"], Group::Environmental),
    m("MAT", &["X", "N", "P"], Group::Environmental),
    m("MPR", &["X", "N", "L", "H"], Group::Environmental),
    m("MUI", &["X", "N", "P", "A"], Group::Environmental),
    m("MVC", &["X", "H", "L", "N"], Group::Environmental),
    m("MVI", &["X", "H", "L", "N"], Group::Environmental),
    m("MVA", &["X", "H", "L", "N"], Group::Environmental),
    m("MSC", &["X", "H", "L", "N"], Group::Environmental),
    m("MSI", &["X", "S", "H", "L", "N"], Group::Environmental),
    m("MSA", &["X", "S", "H", "L", "N"], Group::Environmental),
    m("S", &["X", "N", "P"], Group::Supplemental),
    m("AU", &["X", "N", "Y"], Group::Supplemental),
    m("R", &["X", "A", "U", "I"], Group::Supplemental),
    m("V", &["X", "D", "C"], Group::Supplemental),
    m("RE", &["X", "L", "M", "H"], Group::Supplemental),
    m("U", &["X", "Clear", "Green", "Amber", "Red"], Group::Supplemental),
];

/// Why a vector string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CvssError {
    /// The string does not start with `CVSS:3.1/` or `CVSS:4.0/`.
    Prefix { found: String },
    /// A `/`-separated component is not `NAME:VALUE` with both parts non-empty.
    Malformed { component: String },
    /// A metric name that the version does not define (names are case-sensitive).
    UnknownMetric { version: &'static str, name: String },
    /// A value that the metric does not define (values are case-sensitive).
    InvalidValue { metric: &'static str, value: String },
    /// The same metric twice.
    Duplicate { metric: &'static str },
    /// A mandatory base metric is absent.
    MissingBase { metric: &'static str },
    /// A CVSS 4.0 metric before one that the specification orders ahead of it.
    OutOfOrder { metric: &'static str, after: &'static str },
    /// The scoring library refused a vector that passed validation (a bug in one of the two).
    Scoring(String),
}

/// Shortens and escapes user text quoted in an error message.
fn quoted(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        format!("{:?}…", text.chars().take(MAX).collect::<String>())
    } else {
        format!("{text:?}")
    }
}

impl fmt::Display for CvssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // 3.0 is common in the wild: say why it is refused and what to do instead.
            Self::Prefix { found } if found == "CVSS:3.0" => f.write_str(
                "CVSS 3.0 vectors are not supported: Embargo records CVSS 3.1 and 4.0, which the advisory \
                 formats it writes (CVE, OSV, CSAF) name by version. 3.1 kept 3.0's metrics and values and \
                 changed only the rounding, the environmental formula when scope changes and the guidance, \
                 so re-score the same metrics as \"CVSS:3.1/...\" (check the result with `embargo cvss`)",
            ),
            Self::Prefix { found } => {
                write!(f, "a CVSS vector must start with \"CVSS:3.1/\" or \"CVSS:4.0/\", not {}", quoted(found))
            }
            Self::Malformed { component } => {
                write!(f, "malformed CVSS component {} (expected NAME:VALUE)", quoted(component))
            }
            Self::UnknownMetric { version, name } => {
                write!(f, "unknown CVSS {version} metric {}", quoted(name))?;
                let upper = name.to_ascii_uppercase();
                if upper != *name && table(version).iter().any(|d| d.name == upper) {
                    write!(f, " (metric names are case-sensitive: {upper})")?;
                }
                Ok(())
            }
            Self::InvalidValue { metric, value } => {
                write!(f, "invalid value {} for CVSS metric {metric}", quoted(value))
            }
            Self::Duplicate { metric } => write!(f, "CVSS metric {metric} appears more than once"),
            Self::MissingBase { metric } => write!(f, "CVSS base metric {metric} is missing"),
            Self::OutOfOrder { metric, after } => write!(
                f,
                "CVSS 4.0 metric {after} must come before {metric} (metrics must be in the specification's order)"
            ),
            Self::Scoring(message) => write!(f, "CVSS scoring failed: {message}"),
        }
    }
}

impl std::error::Error for CvssError {}

fn table(version: &str) -> &'static [MetricDef] {
    if version == "4.0" { V40_METRICS } else { V31_METRICS }
}

/// The validated metrics of one vector, indexed like the version's table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Metrics {
    version: &'static str,
    /// `values[i]` is the value of `table(version)[i]`, when given.
    values: Vec<Option<&'static str>>,
}

impl Metrics {
    fn parse(input: &str) -> Result<Self, CvssError> {
        let (version, rest) = if let Some(rest) = input.strip_prefix("CVSS:3.1/") {
            ("3.1", rest)
        } else if let Some(rest) = input.strip_prefix("CVSS:4.0/") {
            ("4.0", rest)
        } else {
            let found = input.split('/').next().unwrap_or_default();
            return Err(CvssError::Prefix { found: found.to_owned() });
        };
        let defs = table(version);
        let mut values: Vec<Option<&'static str>> = vec![None; defs.len()];
        let mut last: Option<usize> = None;
        for component in rest.split('/') {
            let malformed = || CvssError::Malformed { component: component.to_owned() };
            let (name, value) = component.split_once(':').ok_or_else(malformed)?;
            if name.is_empty() || value.is_empty() || value.contains(':') {
                return Err(malformed());
            }
            let index = defs
                .iter()
                .position(|d| d.name == name)
                .ok_or_else(|| CvssError::UnknownMetric { version, name: name.to_owned() })?;
            let def = &defs[index];
            let value = def
                .values
                .iter()
                .copied()
                .find(|v| *v == value)
                .ok_or_else(|| CvssError::InvalidValue { metric: def.name, value: value.to_owned() })?;
            if values[index].is_some() {
                return Err(CvssError::Duplicate { metric: def.name });
            }
            if version == "4.0"
                && let Some(previous) = last
                && previous > index
            {
                return Err(CvssError::OutOfOrder { metric: defs[previous].name, after: def.name });
            }
            last = Some(index);
            values[index] = Some(value);
        }
        if let Some(missing) = defs.iter().zip(&values).find(|(d, v)| d.group == Group::Base && v.is_none()) {
            return Err(CvssError::MissingBase { metric: missing.0.name });
        }
        Ok(Self { version, values })
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        table(self.version).iter().zip(&self.values).filter_map(|(d, v)| v.map(|v| (d.name, v)))
    }

    fn get(&self, name: &str) -> Option<&'static str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether any metric of `group` has a value other than `X` (Not Defined).
    fn has_defined(&self, group: Group) -> bool {
        table(self.version).iter().zip(&self.values).any(|(d, v)| d.group == group && v.is_some_and(|v| v != "X"))
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CVSS:{}", self.version)?;
        for (name, value) in self.iter() {
            write!(f, "/{name}:{value}")?;
        }
        Ok(())
    }
}

/// A score from 0.0 to 10.0, held exactly in tenths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(u8);

impl Score {
    /// From a value already rounded to one decimal by the scoring rules.
    fn from_rounded(value: f64) -> Self {
        // The clamp keeps the cast in range; the scoring rules never leave 0.0..=10.0.
        Self((value * 10.0).round().clamp(0.0, 100.0) as u8)
    }

    /// The score times ten (0..=100), for exact comparisons.
    pub fn tenths(self) -> u8 {
        self.0
    }

    pub fn value(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// The qualitative severity rating of this score.
    pub fn severity(self) -> Severity {
        match self.0 {
            0 => Severity::None,
            1..=39 => Severity::Low,
            40..=69 => Severity::Medium,
            70..=89 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}.{}", self.0 / 10, self.0 % 10))
    }
}

/// The qualitative severity rating scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which CVSS 4.0 metric groups a score takes into account (specification section 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nomenclature {
    /// Base metrics only.
    B,
    /// Base and Threat.
    BT,
    /// Base and Environmental.
    BE,
    /// Base, Threat and Environmental.
    BTE,
}

impl Nomenclature {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::B => "CVSS-B",
            Self::BT => "CVSS-BT",
            Self::BE => "CVSS-BE",
            Self::BTE => "CVSS-BTE",
        }
    }
}

impl fmt::Display for Nomenclature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The CVSS 3.1 scores. Temporal and environmental scores are always computed: with no
/// temporal or environmental metrics given, they equal the base score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scores31 {
    pub base: Score,
    pub temporal: Score,
    pub environmental: Score,
}

/// The CVSS 4.0 score and its nomenclature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score40 {
    pub score: Score,
    pub nomenclature: Nomenclature,
}

/// A validated CVSS 3.1 vector.
#[derive(Debug, Clone, PartialEq)]
pub struct V31 {
    metrics: Metrics,
    inner: cvss::v3::Vector,
}

impl V31 {
    pub fn scores(&self) -> Scores31 {
        let v = &self.inner;
        Scores31 {
            base: Score::from_rounded(v.base_score().value()),
            temporal: Score::from_rounded(v.temporal_score().value()),
            environmental: Score::from_rounded(v.environmental_score().value()),
        }
    }
}

/// A validated CVSS 4.0 vector.
#[derive(Debug, Clone, PartialEq)]
pub struct V40 {
    metrics: Metrics,
    inner: cvss::v4::Vector,
}

impl V40 {
    pub fn score(&self) -> Score40 {
        let threat = self.metrics.has_defined(Group::Temporal);
        let environmental = self.metrics.has_defined(Group::Environmental);
        let nomenclature = match (threat, environmental) {
            (false, false) => Nomenclature::B,
            (true, false) => Nomenclature::BT,
            (false, true) => Nomenclature::BE,
            (true, true) => Nomenclature::BTE,
        };
        Score40 { score: Score::from_rounded(self.inner.score().value()), nomenclature }
    }
}

/// The base metrics of a version (`"3.1"` or `"4.0"`) with their allowed values, in the
/// specification's order: what a calculator offers. `None` for an unknown version.
pub fn base_metrics(version: &str) -> Option<Vec<(&'static str, &'static [&'static str])>> {
    let defs = match version {
        "3.1" => V31_METRICS,
        "4.0" => V40_METRICS,
        _ => return None,
    };
    Some(defs.iter().filter(|d| d.group == Group::Base).map(|d| (d.name, d.values)).collect())
}

/// A strictly parsed CVSS vector, shown in canonical order.
#[derive(Debug, Clone, PartialEq)]
pub enum Vector {
    V31(V31),
    V40(V40),
}

impl Vector {
    /// Parses and validates a vector string (see the module documentation for the rules).
    pub fn parse(input: &str) -> Result<Self, CvssError> {
        let metrics = Metrics::parse(input)?;
        let canonical = metrics.to_string();
        let scoring = |e: cvss::Error| CvssError::Scoring(e.to_string());
        Ok(match metrics.version {
            "3.1" => Self::V31(V31 { inner: canonical.parse().map_err(scoring)?, metrics }),
            _ => Self::V40(V40 { inner: canonical.parse().map_err(scoring)?, metrics }),
        })
    }

    /// "3.1" or "4.0".
    pub fn version(&self) -> &'static str {
        self.metrics().version
    }

    /// The metrics given, as (name, value), in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.metrics().iter()
    }

    /// The value given for one metric, if any.
    pub fn get(&self, name: &str) -> Option<&'static str> {
        self.metrics().get(name)
    }

    /// The headline score: for 3.1 the environmental score (which equals the temporal score,
    /// or the base score, when those metrics are absent); for 4.0 the single score.
    pub fn score(&self) -> Score {
        match self {
            Self::V31(v) => v.scores().environmental,
            Self::V40(v) => v.score().score,
        }
    }

    /// The severity of [`Vector::score`].
    pub fn severity(&self) -> Severity {
        self.score().severity()
    }

    fn metrics(&self) -> &Metrics {
        match self {
            Self::V31(v) => &v.metrics,
            Self::V40(v) => &v.metrics,
        }
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.metrics().fmt(f)
    }
}

impl FromStr for Vector {
    type Err = CvssError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V31_BASE: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    const V40_BASE: &str = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";

    fn err(input: &str) -> CvssError {
        Vector::parse(input).expect_err(input)
    }

    #[test]
    fn v31_scores_and_round_trip() {
        let v = Vector::parse(V31_BASE).unwrap();
        assert_eq!(v.version(), "3.1");
        assert_eq!(v.to_string(), V31_BASE);
        let Vector::V31(inner) = &v else { panic!("3.1") };
        let s = inner.scores();
        assert_eq!(
            (s.base.to_string(), s.temporal.to_string(), s.environmental.to_string()),
            ("9.8".into(), "9.8".into(), "9.8".into())
        );
        assert_eq!(v.severity(), Severity::Critical);
    }

    #[test]
    fn v31_any_order_is_shown_canonically() {
        let v = Vector::parse("CVSS:3.1/MA:X/CR:H/E:P/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N").unwrap();
        assert_eq!(v.to_string(), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/CR:H/MA:X");
        assert_eq!(v.get("MA"), Some("X"));
        // Environmental requirements come before the modified base metrics (Table 15).
        let v = Vector::parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N/MAV:L/AR:H").unwrap();
        assert_eq!(v.to_string(), "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N/AR:H/MAV:L");
    }

    #[test]
    fn v40_score_nomenclature_and_round_trip() {
        let v = Vector::parse(V40_BASE).unwrap();
        assert_eq!(v.to_string(), V40_BASE);
        let Vector::V40(inner) = &v else { panic!("4.0") };
        assert_eq!(inner.score().score.to_string(), "9.3");
        assert_eq!(inner.score().nomenclature, Nomenclature::B);
        let with = |suffix: &str| {
            let Vector::V40(v) = Vector::parse(&format!("{V40_BASE}{suffix}")).unwrap() else { panic!() };
            v.score().nomenclature
        };
        assert_eq!(with("/E:X/CR:X/U:Red"), Nomenclature::B);
        assert_eq!(with("/E:U"), Nomenclature::BT);
        assert_eq!(with("/MAV:L"), Nomenclature::BE);
        assert_eq!(with("/E:A/CR:H"), Nomenclature::BTE);
        assert_eq!(with("/U:Clear").as_str(), "CVSS-B");
    }

    #[test]
    fn v40_out_of_order_is_rejected() {
        let e = err("CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N");
        assert_eq!(e, CvssError::OutOfOrder { metric: "AC", after: "AV" });
        assert!(e.to_string().contains("AV must come before AC"), "{e}");
        assert!(matches!(err(&format!("{V40_BASE}/CR:H/E:A")), CvssError::OutOfOrder { .. }));
        assert!(matches!(err(&format!("{V40_BASE}/U:Red/S:N")), CvssError::OutOfOrder { .. }));
    }

    #[test]
    fn duplicates_are_rejected() {
        assert_eq!(err(&format!("{V31_BASE}/AV:N")), CvssError::Duplicate { metric: "AV" });
        assert_eq!(err(&format!("{V31_BASE}/E:P/E:P")), CvssError::Duplicate { metric: "E" });
        assert_eq!(err(&format!("{V40_BASE}/SA:N")), CvssError::Duplicate { metric: "SA" });
    }

    #[test]
    fn unknown_metrics_and_values_are_rejected() {
        assert!(matches!(err(&format!("{V31_BASE}/XX:Y")), CvssError::UnknownMetric { .. }));
        // 4.0 metrics are unknown in 3.1 and the other way round.
        assert!(matches!(err(&format!("{V31_BASE}/AT:N")), CvssError::UnknownMetric { .. }));
        assert!(matches!(err(&format!("{V40_BASE}/RL:O")), CvssError::UnknownMetric { .. }));
        assert_eq!(err(&format!("{V40_BASE}/U:red")), CvssError::InvalidValue { metric: "U", value: "red".into() });
        assert!(matches!(err("CVSS:3.1/AV:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), CvssError::InvalidValue { .. }));
    }

    #[test]
    fn lower_case_names_are_rejected() {
        let e = err("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/vc:H/VI:H/VA:H/SC:N/SI:N/SA:N");
        assert_eq!(e, CvssError::UnknownMetric { version: "4.0", name: "vc".into() });
        assert!(e.to_string().contains("case-sensitive: VC"), "{e}");
        assert!(matches!(err("CVSS:3.1/av:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), CvssError::UnknownMetric { .. }));
        assert!(matches!(err("cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), CvssError::Prefix { .. }));
    }

    #[test]
    fn missing_base_metrics_are_rejected() {
        assert_eq!(err("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"), CvssError::MissingBase { metric: "A" });
        assert_eq!(
            err("CVSS:4.0/AV:N/AC:L/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            CvssError::MissingBase { metric: "AT" }
        );
    }

    #[test]
    fn prefixes_and_malformed_components_are_rejected() {
        for bad in ["", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:N/AC:L/Au:N/C:C/I:C/A:C", "CVSS:4.0"] {
            assert!(matches!(err(bad), CvssError::Prefix { .. }), "{bad}");
        }
        for bad in [
            &format!("{V31_BASE}/"),
            &format!("{V31_BASE}//E:P"),
            &format!("{V31_BASE}/E"),
            &format!("{V31_BASE}/E:"),
            &format!("{V31_BASE}/:P"),
            &format!("{V31_BASE}/E:P:P"),
            &format!("{V31_BASE} "),
        ] {
            assert!(Vector::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(err(&format!("{V31_BASE}/E:P:P")), CvssError::Malformed { .. }));
        assert!(err("CVSS:3.1/\u{1b}[2J").to_string().contains("\\u{1b}"));
        // 3.0, still common, is refused with the reason and what to do instead.
        let refused = err("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").to_string();
        assert!(
            refused.starts_with("CVSS 3.0 vectors are not supported") && refused.contains("CVSS:3.1/"),
            "{refused}"
        );
    }

    #[test]
    fn severity_bands() {
        let bands = [(0, "None"), (1, "Low"), (39, "Low"), (40, "Medium"), (69, "Medium"), (70, "High")];
        for (tenths, name) in bands.into_iter().chain([(89, "High"), (90, "Critical"), (100, "Critical")]) {
            assert_eq!(Score(tenths).severity().as_str(), name, "{tenths}");
        }
        assert_eq!(Score(0).to_string(), "0.0");
        assert_eq!(Score(100).to_string(), "10.0");
        assert_eq!(
            format!("{:>5}|{:<9}|{:<9}|", Score(98), Severity::High, Nomenclature::BT),
            "  9.8|High     |CVSS-BT  |"
        );
    }
}
