//! Package URLs (the purl specification): parsing into components and building the
//! canonical string, so that a version is always written where it belongs (after the name,
//! before the qualifiers and the subpath) and every component is percent-encoded.
//!
//! No purl crate is among the workspace's pinned dependencies, and the part we need is
//! small; the tests check what we build against an independent parser (`packageurl-python`,
//! in `official_validators.rs`) and the CSAF validator's mandatory test 6.1.13 checks every
//! purl we publish in CSAF.

use std::fmt;

/// A parsed package URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// The package type, lower case (`cargo`, `npm`, `deb`…).
    pub kind: String,
    /// Namespace segments, decoded.
    pub namespace: Vec<String>,
    /// The name, decoded.
    pub name: String,
    /// The version, decoded.
    pub version: Option<String>,
    /// Qualifiers, keys lower case, values decoded, sorted by key; empty values dropped.
    pub qualifiers: Vec<(String, String)>,
    /// The subpath, segments decoded and joined with `/`.
    pub subpath: Option<String>,
}

/// Why a text is not a package URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a package URL (pkg:type/namespace/name@version?qualifiers#subpath): {1}")]
pub struct BadPurl(pub String, pub &'static str);

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but the unreserved characters (and `:`, which the
/// specification leaves unencoded).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Purl {
    /// Parses a package URL the way the specification's parsing rules do.
    pub fn parse(text: &str) -> Result<Self, BadPurl> {
        let bad = |why| BadPurl(text.to_owned(), why);
        if text.chars().any(char::is_whitespace) {
            return Err(bad("it contains white space"));
        }
        let (scheme, rest) = text.split_once(':').ok_or_else(|| bad("no pkg: scheme"))?;
        if !scheme.eq_ignore_ascii_case("pkg") {
            return Err(bad("no pkg: scheme"));
        }
        let (rest, subpath) = match rest.rsplit_once('#') {
            Some((rest, sub)) => {
                let segments: Option<Vec<String>> =
                    sub.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..").map(decode).collect();
                let segments = segments.ok_or_else(|| bad("a bad percent-encoding in the subpath"))?;
                (rest, (!segments.is_empty()).then(|| segments.join("/")))
            }
            None => (rest, None),
        };
        let (rest, qualifiers) = match rest.rsplit_once('?') {
            Some((rest, query)) => {
                let mut qualifiers = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').ok_or_else(|| bad("a qualifier without '='"))?;
                    let key = key.to_ascii_lowercase();
                    let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic())
                        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                    if !key_ok {
                        return Err(bad("a bad qualifier key"));
                    }
                    let value = decode(value).ok_or_else(|| bad("a bad percent-encoding in a qualifier"))?;
                    if qualifiers.iter().any(|(k, _)| *k == key) {
                        return Err(bad("a repeated qualifier"));
                    }
                    if !value.is_empty() {
                        qualifiers.push((key, value));
                    }
                }
                qualifiers.sort();
                (rest, qualifiers)
            }
            None => (rest, Vec::new()),
        };
        let rest = rest.trim_matches('/');
        let (kind, rest) = rest.split_once('/').ok_or_else(|| bad("no name"))?;
        let kind = kind.to_ascii_lowercase();
        let kind_ok = kind.starts_with(|c: char| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
        if !kind_ok {
            return Err(bad("a bad type"));
        }
        let (rest, version) = match rest.rsplit_once('@') {
            Some((rest, version)) => {
                (rest, Some(decode(version).ok_or_else(|| bad("a bad percent-encoding in the version"))?))
            }
            None => (rest, None),
        };
        let mut segments = rest.split('/').filter(|s| !s.is_empty());
        let name = segments.next_back().ok_or_else(|| bad("no name"))?;
        let name = decode(name).ok_or_else(|| bad("a bad percent-encoding in the name"))?;
        if name.is_empty() {
            return Err(bad("no name"));
        }
        let namespace: Option<Vec<String>> = segments.map(decode).collect();
        let namespace = namespace.ok_or_else(|| bad("a bad percent-encoding in the namespace"))?;
        Ok(Self { kind, namespace, name, version: version.filter(|v| !v.is_empty()), qualifiers, subpath })
    }

    /// A `pkg:generic/` URL for a product that has no package URL of its own.
    pub fn generic(namespace: Option<&str>, name: &str) -> Self {
        Self {
            kind: "generic".into(),
            namespace: namespace.map(str::to_owned).into_iter().collect(),
            name: name.to_owned(),
            version: None,
            qualifiers: Vec::new(),
            subpath: None,
        }
    }

    /// The same package at `version`.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// The same package with one qualifier set.
    pub fn with_qualifier(mut self, key: &str, value: &str) -> Self {
        self.qualifiers.retain(|(k, _)| k != key);
        self.qualifiers.push((key.to_owned(), value.to_owned()));
        self.qualifiers.sort();
        self
    }
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.kind)?;
        for segment in &self.namespace {
            write!(f, "{}/", encode(segment))?;
        }
        f.write_str(&encode(&self.name))?;
        if let Some(version) = &self.version {
            write!(f, "@{}", encode(version))?;
        }
        for (i, (key, value)) in self.qualifiers.iter().enumerate() {
            write!(f, "{}{key}={}", if i == 0 { '?' } else { '&' }, encode(value))?;
        }
        if let Some(subpath) = &self.subpath {
            let segments: Vec<String> = subpath.split('/').map(encode).collect();
            write!(f, "#{}", segments.join("/"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_goes_before_the_qualifiers() {
        let purl = Purl::parse("pkg:deb/debian/acme-tools?arch=source").unwrap().with_version("1.2-3+deb12u1");
        assert_eq!(purl.to_string(), "pkg:deb/debian/acme-tools@1.2-3%2Bdeb12u1?arch=source");
        let back = Purl::parse(&purl.to_string()).unwrap();
        assert_eq!(back.version.as_deref(), Some("1.2-3+deb12u1"));
        assert_eq!(back.qualifiers, [("arch".to_owned(), "source".to_owned())]);
    }

    #[test]
    fn components_are_parsed_and_encoded() {
        let p = Purl::parse("pkg:npm/%40angular/core@16.0.0?repository_url=https://r.example/x#lib/a").unwrap();
        assert_eq!(
            (p.kind.as_str(), p.namespace.as_slice(), p.name.as_str()),
            ("npm", &["@angular".to_owned()][..], "core")
        );
        assert_eq!(p.subpath.as_deref(), Some("lib/a"));
        assert_eq!(p.to_string(), "pkg:npm/%40angular/core@16.0.0?repository_url=https:%2F%2Fr.example%2Fx#lib/a");
        assert_eq!(Purl::generic(Some("Acme Co"), "gate way").to_string(), "pkg:generic/Acme%20Co/gate%20way");
        for bad in ["cargo/serde", "pkg:9x/name", "pkg:maven/@1.3.4", "pkg:npm/a b", "pkg:cargo/x?noequals"] {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
    }
}
