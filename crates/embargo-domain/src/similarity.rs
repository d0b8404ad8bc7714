//! Near-duplicate suggestions without plaintext: MinHash signatures and keyed LSH band keys.
//!
//! A report's text is [normalised](normalise) to words, cut into overlapping word
//! [`SHINGLE_WORDS`]-shingles (a text shorter than that is one shingle of all its words), and summarised
//! by a 128-value MinHash [`Signature`]: the fraction of equal values between two signatures
//! estimates the Jaccard similarity of their shingle sets. The report's product, normalised,
//! joins the set as one more element, so a shared product nudges the score without deciding it.
//!
//! What is stored: the signature, encrypted by the caller ([`Signature::to_bytes`]), and the
//! [`bands`] keys, which are HMAC-SHA-256 values under a server key, so that equal keys find
//! candidates without the index revealing the text: without the key, a band value cannot be
//! matched against guessed words. Candidates sharing a band are then scored with
//! [`estimated_jaccard`] and suggested at or above [`SUGGEST_THRESHOLD`].
//!
//! # Stability
//!
//! Every hash is fixed: a shingle is hashed once with SHA-256 (domain-separated, first 8 bytes
//! little-endian), and the 128 MinHash functions are the SplitMix64 finaliser applied to that
//! value XOR 128 fixed seeds (themselves drawn from SplitMix64 from a constant). Nothing uses
//! `std`'s randomly seeded hashers, so signatures are the same on every run and platform; a
//! change to any of this must bump [`SIGNATURE_VERSION`].

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The number of MinHash values in a signature.
pub const SIGNATURE_LEN: usize = 128;
/// LSH: bands per signature.
pub const BANDS: usize = 32;
/// LSH: signature values per band (`BANDS * ROWS == SIGNATURE_LEN`).
pub const ROWS: usize = 4;
/// Words per shingle. One, measured: on the test corpus, word 3-shingles scored reworded
/// duplicates at only 0.21–0.41 (and no duplicate pair shared an LSH band), 2-shingles
/// 0.30–0.54, single words and 2-shingles together 0.41–0.54 (one pair sharing no band),
/// single words 0.55–0.66 with every duplicate pair sharing 3 or more bands. Longer shingles
/// only find copy-paste, and reporters reword.
pub const SHINGLE_WORDS: usize = 1;
/// The first byte of [`Signature::to_bytes`]; changes whenever signatures would change.
pub const SIGNATURE_VERSION: u8 = 1;

/// The estimated Jaccard similarity at and above which a report is suggested as a possible
/// duplicate. Measured on the corpus in this module's tests (9 reports, 3 reworded duplicate
/// pairs, 33 unrelated pairs, most in the same product with the same report template):
/// duplicates scored 0.555, 0.609 and 0.664, unrelated pairs at most 0.406 (two cross-site
/// scripting reports on different pages of one product); 0.48 is midway. One MinHash estimate
/// has a standard error of about 0.044 near 0.5, so this is a suggestion, not a verdict.
pub const SUGGEST_THRESHOLD: f64 = 0.48;

const _: () = assert!(BANDS * ROWS == SIGNATURE_LEN);

/// Common English words that carry no meaning for matching, and greeting or sign-off words
/// that duplicates add or drop.
pub const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "do", "does", "for", "from", "had",
    "has", "have", "he", "her", "his", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our",
    "she", "so", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "to", "too", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who", "will", "with", "would",
    "you", "your", "hi", "hello", "dear", "thanks", "thank", "regards", "best", "kind", "cheers", "please",
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

/// A MinHash signature. An empty text (and no product) gives the empty signature, which is
/// similar to nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature([u32; SIGNATURE_LEN]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({:08x}…)", self.0[0])
    }
}

/// Why bytes are not a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a signature is {expected} bytes, not {found}")]
    Length { expected: usize, found: usize },
    #[error("unknown signature version {0}")]
    Version(u8),
}

impl Signature {
    /// The byte length of [`Signature::to_bytes`].
    pub const BYTES: usize = 1 + 4 * SIGNATURE_LEN;

    /// Whether this is the signature of nothing.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&v| v == u32::MAX)
    }

    /// The values.
    pub fn values(&self) -> &[u32; SIGNATURE_LEN] {
        &self.0
    }

    /// [`SIGNATURE_VERSION`] then the values, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.push(SIGNATURE_VERSION);
        for value in self.0 {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// The inverse of [`Signature::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        if bytes.len() != Self::BYTES {
            return Err(SignatureError::Length { expected: Self::BYTES, found: bytes.len() });
        }
        if bytes[0] != SIGNATURE_VERSION {
            return Err(SignatureError::Version(bytes[0]));
        }
        let mut values = [0u32; SIGNATURE_LEN];
        for (value, chunk) in values.iter_mut().zip(bytes[1..].chunks_exact(4)) {
            *value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(Signature(values))
    }
}

/// SplitMix64's output function.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 128 seeds: SplitMix64's sequence from a fixed state.
const SEEDS: [u64; SIGNATURE_LEN] = {
    let mut seeds = [0u64; SIGNATURE_LEN];
    let mut state: u64 = 0x454d_4241_5247_4f31; // "EMBARGO1"
    let mut i = 0;
    while i < SIGNATURE_LEN {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        seeds[i] = mix(state);
        i += 1;
    }
    seeds
};

/// The 64-bit hash of one set element.
fn element_hash(kind: &[u8], parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"embargo-minhash-v1\0");
    hasher.update(kind);
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The set elements of a text and product, hashed.
fn elements(text: &str, product: Option<&str>, k: usize) -> Vec<u64> {
    let normalised = normalise(text);
    let words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out: Vec<u64> = if words.len() >= k {
        words.windows(k).map(|w| element_hash(b"s", w)).collect()
    } else if words.is_empty() {
        Vec::new()
    } else {
        vec![element_hash(b"s", &words)]
    };
    if let Some(product) = product.map(normalise).filter(|p| !p.is_empty()) {
        out.push(element_hash(b"p", &[&product]));
    }
    out
}

fn minhash(elements: &[u64]) -> Signature {
    let mut values = [u32::MAX; SIGNATURE_LEN];
    for &element in elements {
        for (value, seed) in values.iter_mut().zip(SEEDS) {
            *value = (*value).min((mix(element ^ seed) >> 32) as u32);
        }
    }
    Signature(values)
}

/// The signature of a report's text and product.
pub fn signature(text: &str, product: Option<&str>) -> Signature {
    minhash(&elements(text, product, SHINGLE_WORDS))
}

/// The estimated Jaccard similarity (0.0 to 1.0) of the two shingle sets: the share of equal
/// values. 0.0 if either signature is empty.
pub fn estimated_jaccard(a: &Signature, b: &Signature) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let equal = a.0.iter().zip(&b.0).filter(|(x, y)| x == y).count();
    equal as f64 / SIGNATURE_LEN as f64
}

/// The [`BANDS`] LSH keys of a signature under `key`: for band `i`, the first 8 bytes
/// (big-endian) of HMAC-SHA-256(key, "embargo-lsh-v1" ‖ i ‖ the band's values little-endian).
/// Two signatures share a key for band `i` exactly when (barring collisions) their band `i`
/// values are equal. Empty for the empty signature. Stored as `i64` the cast is lossless.
pub fn bands(signature: &Signature, key: &[u8; 32]) -> Vec<u64> {
    if signature.is_empty() {
        return Vec::new();
    }
    signature
        .0
        .chunks_exact(ROWS)
        .enumerate()
        .map(|(index, rows)| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(b"embargo-lsh-v1");
            mac.update(&[index as u8]);
            for value in rows {
                mac.update(&value.to_le_bytes());
            }
            let tag = mac.finalize().into_bytes();
            u64::from_be_bytes(tag[..8].try_into().expect("8 bytes"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (id, product, text). Ids sharing a letter are the same bug; the rest are different bugs.
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
        let (mut duplicate_pairs, mut unrelated_pairs, mut unrelated_sharing) = (0, 0, 0);
        for (i, (a, sa, ba)) in signed.iter().enumerate() {
            for (b, sb, bb) in &signed[i + 1..] {
                let score = estimated_jaccard(sa, sb);
                let shared = ba.iter().zip(bb).filter(|(x, y)| x == y).count();
                println!("{a:>20} {b:>20} {score:.3} shared bands {shared}");
                if duplicates(a, b) {
                    duplicate_pairs += 1;
                    assert!(score >= SUGGEST_THRESHOLD, "{a} / {b}: {score}");
                    assert!(shared >= 1, "{a} / {b} share no band");
                } else {
                    unrelated_pairs += 1;
                    assert!(score < SUGGEST_THRESHOLD, "{a} / {b}: {score}");
                    unrelated_sharing += usize::from(shared > 0);
                }
            }
        }
        assert_eq!((duplicate_pairs, unrelated_pairs), (3, 33));
        // Most unrelated pairs are not even candidates (measured: 5 of 33).
        assert!(unrelated_sharing * 4 <= unrelated_pairs, "{unrelated_sharing} of {unrelated_pairs}");
    }

    #[test]
    fn normalising() {
        assert_eq!(normalise("Hello, the XSS   in <b>Name</b>!\n\tThanks."), "xss b name b");
        assert_eq!(normalise("Ünïcode WORDS: straße; ΣΊΣΥΦΟΣ"), "ünïcode words straße σίσυφος");
        assert_eq!(normalise("CVE-2026-1234 in /cgi-bin/x?file=../a"), "cve 2026 1234 cgi bin x file");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("... the and of ..."), "");
    }

    #[test]
    fn identical_texts_and_empty_texts() {
        let a = signature("Stored XSS in the device name field", Some("AR-500"));
        assert_eq!(estimated_jaccard(&a, &a.clone()), 1.0);
        // Greeting lines, case and punctuation do not matter.
        let b = signature("Hi!\nSTORED xss, in device-name field.\nThanks", Some("ar 500"));
        assert_eq!(a, b);
        let empty = signature(" the, and ", None);
        assert!(empty.is_empty());
        assert_eq!(estimated_jaccard(&empty, &empty), 0.0);
        assert_eq!(estimated_jaccard(&a, &empty), 0.0);
        assert!(bands(&empty, &[0; 32]).is_empty());
        // A product alone is something.
        assert!(!signature("", Some("AR-500")).is_empty());
        // The product counts, a little.
        let other = signature("Stored XSS in the device name field", Some("Cloud Portal"));
        let score = estimated_jaccard(&a, &other);
        assert!(score > 0.5 && score < 1.0, "{score}");
    }

    #[test]
    fn signatures_are_stable() {
        // Pinned values: a change here changes stored signatures and needs a new version.
        let s = signature("Stored cross-site scripting in the device name field", Some("Acme Router"));
        assert_eq!(&s.values()[..4], &PINNED_VALUES);
        assert_eq!(bands(&s, &[1u8; 32])[..2], PINNED_BANDS);
        assert_eq!(SEEDS[0], mix(0x454d_4241_5247_4f31u64.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }

    const PINNED_VALUES: [u32; 4] = [186_246_172, 202_464_349, 113_714_765, 206_736_528];
    const PINNED_BANDS: [u64; 2] = [3_989_000_974_974_565_366, 16_145_080_577_828_314_548];

    #[test]
    fn band_keys_depend_on_the_key() {
        let s = signature("Path traversal in the backup download endpoint", None);
        let (a, b) = (bands(&s, &[1u8; 32]), bands(&s, &[2u8; 32]));
        assert_eq!(a.len(), BANDS);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        // Different bands with equal values still get different keys (the band index is keyed).
        let flat = Signature([7; SIGNATURE_LEN]);
        let keys = bands(&flat, &[1u8; 32]);
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), BANDS);
    }

    #[test]
    fn bytes_round_trip() {
        let s = signature("Authentication bypass in the configuration API", Some("AR-500"));
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), Signature::BYTES);
        assert_eq!(bytes[0], SIGNATURE_VERSION);
        assert_eq!(Signature::from_bytes(&bytes), Ok(s));
        assert_eq!(
            Signature::from_bytes(&bytes[1..]),
            Err(SignatureError::Length { expected: Signature::BYTES, found: Signature::BYTES - 1 })
        );
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(Signature::from_bytes(&other), Err(SignatureError::Version(9)));
    }

    proptest! {
        #[test]
        fn scores_are_symmetric_and_bounded(a in "\\PC{0,200}", b in "\\PC{0,200}") {
            let (sa, sb) = (signature(&a, None), signature(&b, None));
            let score = estimated_jaccard(&sa, &sb);
            prop_assert!((0.0..=1.0).contains(&score));
            prop_assert_eq!(score, estimated_jaccard(&sb, &sa));
        }

        #[test]
        fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(s) = Signature::from_bytes(&bytes) {
                prop_assert_eq!(s.to_bytes(), bytes);
            }
        }
    }
}
