//! Shared by the fuzz targets: the fuzzing OpenPGP key and the "escape, never strip"
//! check of rendered HTML.

use std::sync::OnceLock;

use embargo_mail::openpgp::InstanceKey;

/// The instance key the mail target decrypts with: a throwaway key committed beside the
/// corpus (`fuzz/key.asc`), so that the encrypted seeds decrypt and the fuzzer can mutate
/// what lies behind a successful decryption.
pub fn key() -> &'static InstanceKey {
    static KEY: OnceLock<InstanceKey> = OnceLock::new();
    KEY.get_or_init(|| InstanceKey::from_armored_secret(include_str!("../key.asc")).expect("fuzz/key.asc"))
}

/// The text a reader sees in an HTML fragment: tags and comments removed, character
/// references decoded.
pub fn visible_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        text.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if rest.starts_with('<') {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
        } else {
            let end = rest.find(';').filter(|end| *end <= 10);
            let decoded = end.and_then(|end| decode(&rest[1..end]));
            match (end, decoded) {
                (Some(end), Some(c)) => {
                    text.push(c);
                    rest = &rest[end + 1..];
                }
                _ => {
                    text.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    text.push_str(rest);
    text
}

fn decode(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// The first character of `input` (whitespace aside) missing, in order, from `shown`: what
/// "escape, never strip" forbids. NUL, which HTML cannot carry, must show as U+FFFD.
pub fn first_missing(input: &str, shown: &str) -> Option<char> {
    let mut shown = shown.chars().filter(|c| !c.is_whitespace());
    for c in input.chars().filter(|c| !c.is_whitespace()) {
        let expected = if c == '\0' { '\u{fffd}' } else { c };
        if !shown.by_ref().any(|s| s == expected) {
            return Some(c);
        }
    }
    None
}
