//! Near-duplicate suggestions without plaintext: weighted term vectors compared by a TF-IDF
//! cosine, and keyed MinHash band keys to find the candidates to compare (ADR 27).
//!
//! A report's text is cut into [terms]: its words (lower-cased runs of letters and digits of
//! two or more characters, [stopwords](STOPWORDS) dropped) and its *technical tokens* (paths,
//! URLs, parameters, file and function names: whitespace-separated tokens holding `/`, `_`,
//! `=`, `.`, `?`, `&`, `:`, `@` or `#` between letters or digits, and their pieces between
//! `?`, `&`, `=` and `#`), which count [`TECHNICAL_WEIGHT`] times a word: a path or a payload
//! survives rewording and translation where prose does not. The report's product is one more
//! term. A [`Signature`] is the set of these terms, each as a 32-bit hash with its kind and
//! count (at most [`MAX_TERMS`] of them).
//!
//! Two signatures are compared by [`scores`]: the cosine of their term vectors, each term
//! weighted by its kind, its sublinear count (`1 + ln count`) and the square of its inverse
//! document frequency among the report and the candidates being compared (smoothed:
//! `1 + ln((n + 1) / (df + 1))`). So the words every report of a template shares weigh
//! little in a neighbourhood of template reports, and the words that make a report
//! different weigh most; the IDF needs no statistics stored beyond the signatures already
//! read. Near-verbatim copies (a scanner campaign run over many hosts) are scored by their
//! cosine without IDF instead, when that is at least [`VERBATIM_THRESHOLD`]: in their
//! neighbourhood everything they share is common. A report is suggested at or above
//! [`SUGGEST_THRESHOLD`].
//!
//! Candidates are found by MinHash over the term set: [`BANDS`] hash functions, each band
//! one minimum (so two reports share band `i` with a probability equal to the Jaccard
//! similarity of their term sets, and a pair at 0.15 shares about 10 of 64). What is
//! stored: the signature, sealed by the caller ([`Signature::to_bytes`]), and the [`bands`]
//! keys, HMAC-SHA-256 values under a server key, so that equal keys find candidates without
//! the index revealing the text: without the key, a band value cannot be matched against
//! guessed words.
//!
//! # Stability
//!
//! Every hash is fixed: a term is hashed once with SHA-256 (domain-separated, first 4 bytes
//! little-endian), and the MinHash functions are the SplitMix64 finaliser applied to that
//! value XOR fixed seeds (themselves drawn from SplitMix64 from a constant). Nothing uses
//! `std`'s randomly seeded hashers, so signatures are the same on every run and platform; a
//! change to any of this must bump [`SIGNATURE_VERSION`].

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// LSH: bands per signature, one MinHash value each.
pub const BANDS: usize = 64;
/// The most terms a signature keeps (those that count most, then the smallest hashes).
pub const MAX_TERMS: usize = 400;
/// How many times a word a technical token counts.
pub const TECHNICAL_WEIGHT: f64 = 2.0;
/// The first byte of [`Signature::to_bytes`]; changes whenever signatures would change.
/// Version 1 was a 128-value MinHash over words (issue 20 measured its recall at 1 of 8).
pub const SIGNATURE_VERSION: u8 = 2;

/// The cosine at and above which a report is suggested as a possible duplicate. Measured on
/// the labelled corpus `tests/data/duplicates.txt` (see `tests/duplicate_corpus.rs` and
/// BENCHMARKS.md): a suggestion, not a verdict.
pub const SUGGEST_THRESHOLD: f64 = 0.29;

/// The [`term_cosine`] (no IDF) at and above which two reports are near-verbatim copies,
/// scored by it whatever their neighbourhood. Among reports that differ only in a host or
/// a path (a scanner campaign), everything they share is common in the neighbourhood, so
/// the IDF leaves little but what differs; this keeps campaigns grouped. On the labelled
/// corpus, unrelated reports written on one template reach 0.56.
pub const VERBATIM_THRESHOLD: f64 = 0.7;

// A near-verbatim copy is always suggested.
const _: () = assert!(VERBATIM_THRESHOLD > SUGGEST_THRESHOLD);

/// Common function words of English, French and German, and greeting or sign-off words that
/// duplicates add or drop: they carry no meaning for matching.
pub const STOPWORDS: &[&str] = &[
    // English
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "his",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "she",
    "so",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "too",
    "us",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "will",
    "with",
    "would",
    "you",
    "your",
    "hi",
    "hello",
    "dear",
    "thanks",
    "thank",
    "regards",
    "best",
    "kind",
    "cheers",
    "please",
    // French
    "au",
    "aux",
    "avec",
    "ce",
    "ces",
    "cette",
    "dans",
    "de",
    "des",
    "du",
    "elle",
    "en",
    "est",
    "et",
    "il",
    "je",
    "la",
    "le",
    "les",
    "leur",
    "mais",
    "ne",
    "nous",
    "on",
    "ou",
    "par",
    "pas",
    "pour",
    "qu",
    "que",
    "qui",
    "sa",
    "se",
    "ses",
    "son",
    "sur",
    "un",
    "une",
    "vous",
    "bonjour",
    "cordialement",
    "merci",
    // German
    "als",
    "auch",
    "auf",
    "aus",
    "bei",
    "das",
    "dem",
    "den",
    "der",
    "des",
    "die",
    "ein",
    "eine",
    "einen",
    "einer",
    "es",
    "für",
    "ich",
    "im",
    "ist",
    "mit",
    "nach",
    "nicht",
    "oder",
    "sich",
    "sie",
    "sind",
    "so",
    "und",
    "von",
    "wir",
    "wird",
    "zu",
    "zum",
    "zur",
    "hallo",
    "grüße",
    "viele",
    "danke",
];

/// Lower-cases `text`, splits it into words at every character that is not alphanumeric
/// (Unicode-aware, so punctuation and symbols go), drops [stopwords](STOPWORDS), and joins
/// the words with single spaces.
pub fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty() && !STOPWORDS.contains(w)).collect();
    words.join(" ")
}

/// What a term is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TermKind {
    /// A word of two or more letters or digits, not a stopword.
    Word,
    /// A path, URL, parameter, file or function name (see the module documentation).
    Technical,
    /// The report's product.
    Product,
}

impl TermKind {
    const fn code(self) -> u8 {
        match self {
            TermKind::Word => b'w',
            TermKind::Technical => b't',
            TermKind::Product => b'p',
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            b'w' => Some(TermKind::Word),
            b't' => Some(TermKind::Technical),
            b'p' => Some(TermKind::Product),
            _ => None,
        }
    }

    /// How much one occurrence counts.
    pub const fn weight(self) -> f64 {
        match self {
            TermKind::Word | TermKind::Product => 1.0,
            TermKind::Technical => TECHNICAL_WEIGHT,
        }
    }
}

/// The characters that make a whitespace-separated token technical when they stand between
/// letters or digits.
const TECHNICAL_MARKS: &[char] = &['/', '_', '=', '.', '?', '&', ':', '@', '#'];

/// The terms of a text and product, in order of appearance, repeated as often as they occur.
pub fn terms(text: &str, product: Option<&str>) -> Vec<(TermKind, String)> {
    let lower = text.to_lowercase();
    let mut out: Vec<(TermKind, String)> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2 && !STOPWORDS.contains(w))
        .map(|w| (TermKind::Word, w.to_owned()))
        .collect();
    for token in lower.split_whitespace() {
        let token = token
            .trim_start_matches(['(', '[', '{', '"', '\'', '`', '<', ',', ';'])
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '`', '>']);
        if !is_technical(token) {
            continue;
        }
        out.push((TermKind::Technical, token.to_owned()));
        let pieces: Vec<&str> = token.split(['?', '&', '=', '#']).filter(|p| is_technical(p)).collect();
        if pieces.len() > 1 || pieces.first().is_some_and(|p| *p != token) {
            out.extend(pieces.into_iter().map(|p| (TermKind::Technical, p.to_owned())));
        }
    }
    if let Some(product) = product.map(normalise).filter(|p| !p.is_empty()) {
        out.push((TermKind::Product, product));
    }
    out
}

/// Whether a trimmed token is technical: three or more characters, with a
/// [mark](TECHNICAL_MARKS) somewhere after a letter or digit and before another.
fn is_technical(token: &str) -> bool {
    if token.chars().count() < 3 {
        return false;
    }
    let (Some(first), Some(last)) = (token.find(char::is_alphanumeric), token.rfind(char::is_alphanumeric)) else {
        return false;
    };
    first < last && token[first..last].contains(TECHNICAL_MARKS)
}

/// One term of a signature: its hash, kind and count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    /// The first 4 bytes (little-endian) of SHA-256 over the term, domain-separated.
    pub id: u32,
    /// What it is.
    pub kind: TermKind,
    /// How often it occurs (saturating).
    pub count: u16,
}

impl Term {
    /// The term's weight before IDF: its kind's weight times `1 + ln count`.
    pub fn weight(&self) -> f64 {
        self.kind.weight() * (1.0 + f64::from(self.count.max(1)).ln())
    }
}

/// A report's terms, by hash. An empty text (and no product) gives the empty signature,
/// which is similar to nothing.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Signature(Vec<Term>);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({} terms)", self.0.len())
    }
}

/// Why bytes are not a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a signature of {terms} terms is {expected} bytes, not {found}")]
    Length { terms: usize, expected: usize, found: usize },
    #[error("unknown signature version {0}")]
    Version(u8),
    #[error("a signature's terms are not distinct, known and in order")]
    Terms,
}

/// Bytes per term in [`Signature::to_bytes`].
const TERM_BYTES: usize = 7;

impl Signature {
    /// Whether this is the signature of nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The terms, by increasing hash.
    pub fn terms(&self) -> &[Term] {
        &self.0
    }

    /// [`SIGNATURE_VERSION`], the number of terms (2 bytes), then each term's hash (4
    /// bytes), kind (1) and count (2), all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + TERM_BYTES * self.0.len());
        out.push(SIGNATURE_VERSION);
        out.extend_from_slice(&u16::try_from(self.0.len()).unwrap_or(u16::MAX).to_le_bytes());
        for term in &self.0 {
            out.extend_from_slice(&term.id.to_le_bytes());
            out.push(term.kind.code());
            out.extend_from_slice(&term.count.to_le_bytes());
        }
        out
    }

    /// The inverse of [`Signature::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        match bytes.first() {
            Some(&SIGNATURE_VERSION) => {}
            Some(&other) => return Err(SignatureError::Version(other)),
            None => return Err(SignatureError::Length { terms: 0, expected: 3, found: 0 }),
        }
        if bytes.len() < 3 {
            return Err(SignatureError::Length { terms: 0, expected: 3, found: bytes.len() });
        }
        let terms = usize::from(u16::from_le_bytes([bytes[1], bytes[2]]));
        let expected = 3 + TERM_BYTES * terms;
        if bytes.len() != expected {
            return Err(SignatureError::Length { terms, expected, found: bytes.len() });
        }
        let mut out = Vec::with_capacity(terms);
        for chunk in bytes[3..].chunks_exact(TERM_BYTES) {
            let id = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let kind = TermKind::from_code(chunk[4]).ok_or(SignatureError::Terms)?;
            let count = u16::from_le_bytes([chunk[5], chunk[6]]);
            if count == 0 || out.last().is_some_and(|last: &Term| last.id >= id) {
                return Err(SignatureError::Terms);
            }
            out.push(Term { id, kind, count });
        }
        Ok(Signature(out))
    }
}

/// The hash of one term.
fn term_id(kind: TermKind, term: &str) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"embargo-terms-v2\0");
    hasher.update([kind.code(), 0]);
    hasher.update(term.as_bytes());
    let digest = hasher.finalize();
    u32::from_le_bytes(digest[..4].try_into().expect("4 bytes"))
}

/// The signature of a report's text and product.
pub fn signature(text: &str, product: Option<&str>) -> Signature {
    let mut counted: HashMap<u32, Term> = HashMap::new();
    for (kind, term) in terms(text, product) {
        let id = term_id(kind, &term);
        let entry = counted.entry(id).or_insert(Term { id, kind, count: 0 });
        // Two terms of different kinds on one hash (a 1 in 4 billion chance per pair): the
        // heavier kind wins.
        if kind.weight() > entry.kind.weight() {
            entry.kind = kind;
        }
        entry.count = entry.count.saturating_add(1);
    }
    let mut terms: Vec<Term> = counted.into_values().collect();
    if terms.len() > MAX_TERMS {
        terms.sort_by(|a, b| b.weight().total_cmp(&a.weight()).then(a.id.cmp(&b.id)));
        terms.truncate(MAX_TERMS);
    }
    terms.sort_by_key(|t| t.id);
    Signature(terms)
}

/// SplitMix64's output function.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The MinHash seeds: SplitMix64's sequence from a fixed state.
const SEEDS: [u64; BANDS] = {
    let mut seeds = [0u64; BANDS];
    let mut state: u64 = 0x454d_4241_5247_4f32; // "EMBARGO2"
    let mut i = 0;
    while i < BANDS {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        seeds[i] = mix(state);
        i += 1;
    }
    seeds
};

/// The [`BANDS`] LSH keys of a signature under `key`: for band `i`, the first 8 bytes
/// (big-endian) of HMAC-SHA-256(key, "embargo-lsh-v2" ‖ i ‖ the band's MinHash value
/// little-endian), the value being the least of SplitMix64(term hash XOR seed `i`) over the
/// signature's terms. Two signatures share a key for band `i` exactly when (barring
/// collisions) the same term is least for both. Empty for the empty signature. Stored as
/// `i64` the cast is lossless.
pub fn bands(signature: &Signature, key: &[u8; 32]) -> Vec<u64> {
    if signature.is_empty() {
        return Vec::new();
    }
    SEEDS
        .iter()
        .enumerate()
        .map(|(index, seed)| {
            let least = signature.0.iter().map(|t| mix(u64::from(t.id) ^ seed)).min().expect("not empty");
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(b"embargo-lsh-v2");
            mac.update(&[index as u8]);
            mac.update(&least.to_le_bytes());
            let tag = mac.finalize().into_bytes();
            u64::from_be_bytes(tag[..8].try_into().expect("8 bytes"))
        })
        .collect()
}

/// The similarity (0.0 to 1.0) of `own` to each of `others`, in order: the cosine of their
/// term vectors weighted by [`Term::weight`] and the squared smoothed IDF over `own` and
/// `others` (see the module documentation), or their [`term_cosine`] when that is at least
/// [`VERBATIM_THRESHOLD`] and higher. 0.0 against an empty signature; exactly 1.0 for equal
/// signatures.
pub fn scores(own: &Signature, others: &[&Signature]) -> Vec<f64> {
    let documents = 1 + others.len();
    let mut frequency: HashMap<u32, u32> = HashMap::new();
    for signature in std::iter::once(own).chain(others.iter().copied()) {
        for term in &signature.0 {
            *frequency.entry(term.id).or_default() += 1;
        }
    }
    let idf = |id: u32| {
        let df = frequency.get(&id).copied().unwrap_or(1);
        let idf = 1.0 + ((documents as f64 + 1.0) / (f64::from(df) + 1.0)).ln();
        idf * idf
    };
    let weigh = |s: &Signature| -> Vec<(u32, f64)> { s.0.iter().map(|t| (t.id, t.weight() * idf(t.id))).collect() };
    let mine = weigh(own);
    others
        .iter()
        .map(|other| {
            let weighted = cosine(&mine, &weigh(other));
            let plain = term_cosine(own, other);
            if plain >= VERBATIM_THRESHOLD { weighted.max(plain) } else { weighted }
        })
        .collect()
}

/// The cosine of two signatures' term vectors weighted by [`Term::weight`] alone (no IDF).
pub fn term_cosine(a: &Signature, b: &Signature) -> f64 {
    let weigh = |s: &Signature| -> Vec<(u32, f64)> { s.0.iter().map(|t| (t.id, t.weight())).collect() };
    cosine(&weigh(a), &weigh(b))
}

/// The cosine of two sparse vectors sorted by term hash.
fn cosine(a: &[(u32, f64)], b: &[(u32, f64)]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut dot, mut i, mut j) = (0.0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    let norm = |v: &[(u32, f64)]| v.iter().map(|(_, w)| w * w).sum::<f64>();
    // For equal vectors dot == norm(a) == norm(b) bit for bit, and sqrt(x * x) == x.
    (dot / (norm(a) * norm(b)).sqrt()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (id, product, text). Ids sharing a stem before `-1`/`-2` are the same bug; the rest are
    /// different bugs, most in one product on one report template.
    const CORPUS: &[(&str, &str, &str)] = &[
        ("xss-1", "Acme Router AR-500", "Product: Acme Router AR-500, firmware 2.3.1.
    Summary: stored cross-site scripting in the device name field of the web admin interface.
    Steps to reproduce:
    1. Log in to the admin interface at http://192.168.1.1 as any user.
    2. Go to Network > Connected devices and rename a device to <script>alert(document.cookie)</script>.
    3. When an administrator opens the connected devices page the script runs in their session.
    Impact: an attacker on the local network can steal the administrator session cookie and take over the router.
    Please let me know if you need further information."),
        ("xss-2", "Acme Router AR-500", "Hello security team,

    I hope this finds you well. I found a problem in the AR-500 router (firmware 2.3.1).
    The admin web interface does not escape the device name shown on the Network > Connected devices page, so a stored cross-site scripting payload such as <script>alert(document.cookie)</script> set as a device name runs whenever an administrator opens the connected devices page.
    An attacker on the local network can therefore steal the administrator session cookie and take over the router.
    To reproduce: log in to the admin interface at http://192.168.1.1, rename a device to the payload above, then open the connected devices page as an administrator.

    Best regards,
    Jane"),
        ("traversal-1", "Acme Router AR-500", "Product: Acme Router AR-500, firmware 2.3.1.
    Summary: path traversal in the firmware backup download endpoint.
    Steps to reproduce:
    1. Log in to the admin interface at http://192.168.1.1.
    2. Request /cgi-bin/backup_download?file=../../../../etc/shadow.
    3. The response contains the contents of /etc/shadow instead of the backup archive.
    Impact: any authenticated user can read arbitrary files from the router file system, including password hashes.
    Please let me know if you need further information."),
        ("traversal-2", "Acme Router AR-500", "Hi,
    The backup_download CGI script on the AR-500 does not sanitise its file parameter.
    Requesting /cgi-bin/backup_download?file=../../../../etc/shadow after logging in to the admin interface at http://192.168.1.1 returns the contents of /etc/shadow instead of the backup archive.
    So any authenticated user can read arbitrary files from the router file system, including password hashes.
    This is a path traversal in the firmware backup download endpoint, firmware 2.3.1.
    Thanks!"),
        ("auth-1", "Acme Router AR-500", "Product: Acme Router AR-500, firmware 2.3.1.
    Summary: authentication bypass in the configuration API.
    Steps to reproduce:
    1. Without logging in, send POST /api/config with a session cookie set to any value, for example session=AAAA.
    2. The server only checks that the cookie is present, not that it is valid, and applies the new configuration.
    3. Set the admin password field in the request body to change the administrator password.
    Impact: an unauthenticated attacker on the local network can take full control of the router.
    Please let me know if you need further information."),
        ("auth-2", "Acme Router AR-500", "Dear Acme PSIRT,

    The configuration API of the Acme Router AR-500 (firmware 2.3.1) only checks that a session cookie is present, not that it is valid.
    An unauthenticated attacker on the local network can send POST /api/config with any session cookie value such as session=AAAA and the server applies the new configuration, including a new administrator password set in the admin password field of the request body.
    This means full control of the router without logging in: an authentication bypass in the configuration API.

    Kind regards,
    Sam Example"),
        ("csrf", "Acme Router AR-500", "Product: Acme Router AR-500, firmware 2.3.1.
    Summary: cross-site request forgery on the reboot endpoint.
    Steps to reproduce:
    1. Log in to the admin interface at http://192.168.1.1 as an administrator.
    2. In the same browser visit a page that submits a form to http://192.168.1.1/cgi-bin/reboot.
    3. The router reboots because the endpoint has no CSRF token and accepts cross-origin requests.
    Impact: a malicious web page can repeatedly reboot the router, causing a denial of service.
    Please let me know if you need further information."),
        ("xss-other-field", "Acme Router AR-500", "Product: Acme Router AR-500, firmware 2.3.1.
    Summary: reflected cross-site scripting in the search parameter of the system log page.
    Steps to reproduce:
    1. Log in to the admin interface at http://192.168.1.1.
    2. Open /cgi-bin/syslog?search=<img src=x onerror=alert(1)> in the browser.
    3. The search term is echoed into the page without escaping and the script runs.
    Impact: an attacker who gets an administrator to follow a link can run script in their session.
    Please let me know if you need further information."),
        ("sqli-other-product", "Acme Cloud Portal", "Product: Acme Cloud Portal, version 5.2.
    Summary: SQL injection in the login form.
    Steps to reproduce:
    1. Open https://portal.acme.example/login.
    2. Enter admin' OR '1'='1 as the user name and any password.
    3. The portal logs in as the first user in the database, usually an administrator.
    Impact: an unauthenticated attacker can log in as any user and read customer data.
    Please let me know if you need further information."),
    ];

    /// "xss-1" and "xss-2" are duplicates; "xss-other-field" is not a duplicate of either.
    fn duplicates(a: &str, b: &str) -> bool {
        let stem = |id: &str| id.strip_suffix("-1").or_else(|| id.strip_suffix("-2")).map(str::to_string);
        stem(a).is_some() && stem(a) == stem(b)
    }

    /// Each report scored against all the others (its neighbourhood here): duplicates at or
    /// above the threshold, unrelated reports below, and every duplicate pair a candidate.
    #[test]
    fn the_corpus_separates_at_the_threshold() {
        let key = [42u8; 32];
        let signed: Vec<_> = CORPUS
            .iter()
            .map(|(id, product, text)| {
                let s = signature(text, Some(product));
                let b = bands(&s, &key);
                (*id, s, b)
            })
            .collect();
        let (mut duplicate_pairs, mut unrelated_pairs) = (0, 0);
        for (i, (a, sa, ba)) in signed.iter().enumerate() {
            let others: Vec<&Signature> = signed.iter().filter(|(b, _, _)| b != a).map(|(_, s, _)| s).collect();
            let all = scores(sa, &others);
            for (score, (b, _, bb)) in all.iter().zip(signed.iter().filter(|(b, _, _)| b != a)) {
                let shared = ba.iter().zip(bb).filter(|(x, y)| x == y).count();
                println!("{a:>20} {b:>20} {score:.3} shared bands {shared}");
                if duplicates(a, b) {
                    duplicate_pairs += usize::from(i < signed.iter().position(|(id, _, _)| id == b).unwrap());
                    assert!(*score >= SUGGEST_THRESHOLD, "{a} / {b}: {score}");
                    assert!(shared >= 8, "{a} / {b} share {shared} bands");
                } else {
                    unrelated_pairs += 1;
                    assert!(*score < SUGGEST_THRESHOLD, "{a} / {b}: {score}");
                }
            }
        }
        assert_eq!((duplicate_pairs, unrelated_pairs), (3, 66));
    }

    #[test]
    fn normalising() {
        assert_eq!(normalise("Hello, the XSS   in <b>Name</b>!\n\tThanks."), "xss b name b");
        assert_eq!(normalise("Ünïcode WORDS: straße; ΣΊΣΥΦΟΣ"), "ünïcode words straße σίσυφος");
        assert_eq!(normalise("CVE-2026-1234 in /cgi-bin/x?file=../a"), "cve 2026 1234 cgi bin x file");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("... the and of ... le und"), "");
    }

    #[test]
    fn words_and_technical_tokens() {
        let found = terms("Request /cgi-bin/dl?file=../etc/shadow, see http://192.168.1.1. Thanks", Some("AR-500"));
        let technical: Vec<&str> =
            found.iter().filter(|(k, _)| *k == TermKind::Technical).map(|(_, t)| t.as_str()).collect();
        assert_eq!(technical, ["/cgi-bin/dl?file=../etc/shadow", "/cgi-bin/dl", "../etc/shadow", "http://192.168.1.1"]);
        let words: Vec<&str> = found.iter().filter(|(k, _)| *k == TermKind::Word).map(|(_, t)| t.as_str()).collect();
        assert_eq!(words, ["request", "cgi", "bin", "dl", "file", "etc", "shadow", "see", "http", "192", "168"]);
        assert_eq!(found.last(), Some(&(TermKind::Product, "ar 500".to_owned())));
        // Prose punctuation does not make a token technical; a function or file name does.
        assert!(terms("Summary: it works. (Really?) cross-site", None).iter().all(|(k, _)| *k == TermKind::Word));
        assert!(
            terms("in png_read_chunk src/png.c:412.", None).contains(&(TermKind::Technical, "src/png.c:412".into()))
        );
    }

    #[test]
    fn identical_texts_and_empty_texts() {
        let a = signature("Stored XSS in the device name field", Some("AR-500"));
        assert_eq!(scores(&a, &[&a.clone()]), [1.0]);
        // Greeting lines, case and punctuation do not matter.
        let b = signature("Hi!\nSTORED xss, in device-name field.\nThanks", Some("ar 500"));
        assert_eq!(a, b);
        let empty = signature(" the, and ", None);
        assert!(empty.is_empty());
        assert_eq!(scores(&empty, &[&empty]), [0.0]);
        assert_eq!(scores(&a, &[&empty]), [0.0]);
        assert_eq!(scores(&empty, &[&a]), [0.0]);
        assert!(bands(&empty, &[0; 32]).is_empty());
        assert_eq!(scores(&a, &[]), Vec::<f64>::new());
        // A product alone is something.
        assert!(!signature("", Some("AR-500")).is_empty());
        // The product counts, a little.
        let other = signature("Stored XSS in the device name field", Some("Cloud Portal"));
        let score = scores(&a, &[&other])[0];
        assert!(score > 0.5 && score < 1.0, "{score}");
        // Equal texts score exactly 1 whatever the neighbourhood (a scanner campaign).
        let hsts = signature("The response of /login lacks the Strict-Transport-Security header.", None);
        assert_eq!(scores(&hsts, &[&hsts.clone(), &a, &hsts.clone()]), [1.0, 0.0, 1.0]);
    }

    /// The IDF comes from the neighbourhood: a term every compared report shares weighs less
    /// than one only two share.
    #[test]
    fn shared_boilerplate_weighs_less_than_what_is_particular() {
        let template = |what: &str| signature(&format!("Product: router. Summary: {what}. Impact: root."), None);
        let a = template("hidden telnet backdoor account");
        let b = template("hidden telnet backdoor service");
        let (c, d) = (template("ping command injection"), template("upnp on the internet"));
        // Compared alone, two reports on one template look alike; among reports of that
        // template, its words weigh little and what is particular to each decides.
        let alone = scores(&a, &[&c])[0];
        let among = scores(&a, &[&b, &c, &d]);
        assert!(alone > 2.0 * among[1], "{alone} {among:?}");
        assert!(among[1] < 0.2 && among[2] < 0.2, "{among:?}");
        assert!(among[0] > 3.0 * among[1].max(among[2]), "{among:?}");
    }

    /// A scanner campaign: the same finding on twenty hosts. Each report's page, its
    /// neighbourhood being the campaign itself, suggests the others.
    #[test]
    fn a_campaign_over_many_hosts_stays_grouped() {
        let hosts = ["shop", "blog", "api", "mail", "cdn", "www", "docs", "status", "git", "ci"];
        let campaign: Vec<Signature> = hosts
            .iter()
            .chain(["vpn", "sso", "wiki", "jobs", "media", "pay", "help", "dev", "beta", "app"].iter())
            .map(|host| {
                signature(
                    &format!(
                        "The response of https://{host}.acme.example/ lacks the Strict-Transport-Security \
                         header, so a network attacker can downgrade the first visit to plain HTTP and read \
                         or change the page. Found by an automated scan. Severity: low."
                    ),
                    Some("Acme website"),
                )
            })
            .collect();
        for (i, own) in campaign.iter().enumerate() {
            let others: Vec<&Signature> =
                campaign.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s).collect();
            let found = scores(own, &others);
            assert!(found.iter().all(|s| *s >= VERBATIM_THRESHOLD), "{found:?}");
        }
    }

    #[test]
    fn signatures_are_stable() {
        // Pinned values: a change here changes stored signatures and needs a new version.
        let s = signature("Stored cross-site scripting in /cgi-bin/name?x=1 of the device", Some("Acme Router"));
        let ids: Vec<u32> = s.terms().iter().take(3).map(|t| t.id).collect();
        assert_eq!(ids, PINNED_IDS);
        assert_eq!(bands(&s, &[1u8; 32])[..2], PINNED_BANDS);
        assert_eq!(SEEDS[0], mix(0x454d_4241_5247_4f32u64.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }

    const PINNED_IDS: [u32; 3] = [369_216_541, 478_242_503, 571_306_366];
    const PINNED_BANDS: [u64; 2] = [1_681_336_826_152_831_634, 4_780_416_898_306_808_312];

    #[test]
    fn band_keys_depend_on_the_key() {
        let s = signature("Path traversal in the backup download endpoint", None);
        let (a, b) = (bands(&s, &[1u8; 32]), bands(&s, &[2u8; 32]));
        assert_eq!(a.len(), BANDS);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        // A one-term signature has the same least value in every band; the band index is keyed.
        let keys = bands(&signature("overflow", None), &[1u8; 32]);
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), BANDS);
    }

    #[test]
    fn long_texts_keep_the_terms_that_count_most() {
        let text: String = (0..1000).map(|i| format!("word{i} ")).collect::<String>() + &"/etc/passwd ".repeat(3);
        let s = signature(&text, None);
        assert_eq!(s.terms().len(), MAX_TERMS);
        assert!(s.terms().iter().any(|t| t.kind == TermKind::Technical && t.count == 3));
        assert_eq!(Signature::from_bytes(&s.to_bytes()), Ok(s));
    }

    #[test]
    fn bytes_round_trip() {
        let s = signature("Authentication bypass in the configuration API /api/config", Some("AR-500"));
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), 3 + 7 * s.terms().len());
        assert_eq!(bytes[0], SIGNATURE_VERSION);
        assert_eq!(Signature::from_bytes(&bytes), Ok(s.clone()));
        assert!(matches!(Signature::from_bytes(&bytes[..bytes.len() - 1]), Err(SignatureError::Length { .. })));
        let mut other = bytes.clone();
        other[0] = 1;
        assert_eq!(Signature::from_bytes(&other), Err(SignatureError::Version(1)));
        // A version 1 signature (a MinHash of 128 values) is refused, not misread.
        let mut v1 = vec![1u8];
        v1.extend([0u8; 512]);
        assert_eq!(Signature::from_bytes(&v1), Err(SignatureError::Version(1)));
        let mut unordered = bytes.clone();
        unordered[3..10].copy_from_slice(&bytes[10..17]);
        assert_eq!(Signature::from_bytes(&unordered), Err(SignatureError::Terms));
        assert_eq!(Signature::from_bytes(&[SIGNATURE_VERSION, 0, 0]), Ok(Signature::default()));
    }

    proptest! {
        #[test]
        fn scores_are_symmetric_and_bounded(a in "\\PC{0,200}", b in "\\PC{0,200}") {
            let (sa, sb) = (signature(&a, None), signature(&b, None));
            let (ab, ba) = (scores(&sa, &[&sb])[0], scores(&sb, &[&sa])[0]);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((ab - ba).abs() < 1e-12);
        }

        #[test]
        fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(s) = Signature::from_bytes(&bytes) {
                prop_assert_eq!(s.to_bytes(), bytes);
            }
        }
    }
}
