//! Random tokens and their hashes (API tokens, one-time links, status links, reply addresses).
//!
//! Tokens have 256 bits of entropy and are shown once; only their SHA-256 is stored where a
//! token is a credential, which suffices for values with that much entropy.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random 256-bit token in hex, after `prefix`.
pub(crate) fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a credential token.
pub(crate) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A short token for reply addresses: 12 characters of `a-z0-9` (about 62 bits). It names a
/// report's thread; it is not a credential (mail from anyone but the reporter is quarantined).
pub(crate) fn reply() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}
