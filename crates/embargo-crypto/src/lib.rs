//! Encryption at rest.
//!
//! Every confidential value (report text, messages, attachments, reporter identities) is
//! sealed on its own with a fresh random data key (XChaCha20-Poly1305), and that data key is
//! itself sealed under the instance's master key. A sealed value is self-contained:
//!
//! ```text
//! 0x01 | key id (4) | wrap nonce (24) | wrapped data key (32 + 16) | data nonce (24) | ciphertext + tag (n + 16)
//! ```
//!
//! The key id is the first four bytes of SHA-256 of the master key, so a value sealed under
//! another key is refused with a clear error instead of failing as "corrupt". Rotating the
//! master key only needs the wrapped data keys rewritten. Callers pass associated data that
//! names where the value lives (for example `reports.title:EMB-2026-4`), so a ciphertext
//! moved to another row or column no longer opens.
//!
//! Equality lookups on sealed values (a reporter's address, a Message-ID) use a keyed blind
//! index: HMAC-SHA-256 under a key derived from the master key.
//!
//! Written here rather than taken from a crate: the envelope format above is 40 lines over
//! RustCrypto's audited AEAD, and no maintained crate offers per-value envelope encryption
//! with associated data for a database (see `docs/adr/0002-encryption-at-rest.md`).
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + WRAPPED_KEY_LEN + NONCE_LEN + TAG_LEN;

/// The name of the master key file inside the data directory.
pub const KEY_FILE_NAME: &str = "master.key";

/// What can go wrong with keys and sealed values.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key text is not 32 bytes of base64.
    #[error("the master key must be 32 random bytes in base64 (44 characters)")]
    BadKey,
    /// The key file is readable by other users.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFileTooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The value was sealed under a different master key.
    #[error("value was encrypted with another master key (key id {found}, this instance has {expected})")]
    WrongKey {
        /// Key id in the value.
        found: String,
        /// Key id of the loaded master key.
        expected: String,
    },
    /// The value is truncated, altered, or was moved from elsewhere.
    #[error("encrypted value is corrupt or does not belong here")]
    Corrupt,
}

/// The instance's keys: the master key and the keys derived from it.
pub struct Keyring {
    master: Zeroizing<[u8; 32]>,
    key_id: [u8; 4],
    index_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("key_id", &hex::encode(self.key_id)).finish_non_exhaustive()
    }
}

/// Where the master key came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// From the environment (`EMBARGO_MASTER_KEY`).
    Environment,
    /// From the existing key file.
    File,
    /// A new key was generated and written to the key file.
    Generated,
}

impl Keyring {
    /// Builds a keyring from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let master = Zeroizing::new(bytes);
        let digest = Sha256::digest(master.as_slice());
        let key_id = [digest[0], digest[1], digest[2], digest[3]];
        let index_key = derive(&master, "blind index");
        Self { master, key_id, index_key }
    }

    /// A key for `purpose` derived from the master key (HMAC-SHA-256 of
    /// `embargo <purpose> v1` under it, as the blind-index key is): stable for the instance,
    /// different per purpose, and useless without the master key.
    pub fn derived_key(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        derive(&self.master, purpose)
    }

    /// Parses a base64 master key.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(BASE64.decode(text.trim()).map_err(|_| CryptoError::BadKey)?);
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random keyring (tests and key generation).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Loads the master key from `from_env` when given, else from `<data_dir>/master.key`,
    /// creating that file (mode 0600) with a new random key on first start.
    pub fn load_or_create(data_dir: &Path, from_env: Option<&str>) -> Result<(Self, KeySource), CryptoError> {
        if let Some(found) = Self::load(data_dir, from_env)? {
            return Ok(found);
        }
        let path = data_dir.join(KEY_FILE_NAME);
        let shown = path.display().to_string();
        let io_err = |source| CryptoError::KeyFile { path: shown.clone(), source };
        // Written whole to a temporary file, synced, then linked into place, so a
        // crash never leaves an empty or partial key behind; a concurrent first start
        // loses the race cleanly and uses the winner's key.
        let keyring = Self::generate();
        let tmp = data_dir.join(format!(".{KEY_FILE_NAME}.{}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = (|| {
            let mut file = options.open(&tmp)?;
            let text = Zeroizing::new(BASE64.encode(keyring.master.as_slice()));
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| fs::hard_link(&tmp, &path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Ok(dir) = fs::File::open(data_dir) {
                    let _ = dir.sync_all();
                }
                Ok((keyring, KeySource::Generated))
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(data_dir, None),
            Err(err) => Err(io_err(err)),
        }
    }

    /// Loads the master key from `from_env` when given, else from `<data_dir>/master.key`;
    /// `None` when there is no key file (nothing is created).
    pub fn load(data_dir: &Path, from_env: Option<&str>) -> Result<Option<(Self, KeySource)>, CryptoError> {
        if let Some(text) = from_env {
            return Ok(Some((Self::from_base64(text)?, KeySource::Environment)));
        }
        let path = data_dir.join(KEY_FILE_NAME);
        match fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                Ok(Some((Self::from_base64(&text)?, KeySource::File)))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CryptoError::KeyFile { path: path.display().to_string(), source }),
        }
    }

    /// The key id (hex), safe to log.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id)
    }

    /// The id (hex) of the master key a sealed value was made with, read from its header
    /// (which is not secret); `None` when it is not a sealed value of this format.
    pub fn key_id_of(sealed: &[u8]) -> Option<String> {
        (sealed.len() >= OVERHEAD && sealed[0] == VERSION).then(|| hex::encode(&sealed[1..HEADER_LEN]))
    }

    /// Seals `plaintext` under a fresh data key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let data_key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&self.key_id);
        let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().expect("header length");

        let wrap_nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let wrapper = XChaCha20Poly1305::new(self.master.as_slice().into());
        let wrapped = wrapper
            .encrypt(&wrap_nonce, Payload { msg: data_key.as_slice(), aad: &header })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);

        let data_nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let cipher = XChaCha20Poly1305::new(&data_key);
        let sealed = cipher
            .encrypt(&data_nonce, Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Seals a string.
    pub fn seal_str(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        self.seal(plaintext.as_bytes(), aad.as_bytes())
    }

    /// Opens a sealed value; `aad` must be the one it was sealed with.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            return Err(CryptoError::Corrupt);
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        if header[1..] != self.key_id {
            return Err(CryptoError::WrongKey { found: hex::encode(&header[1..]), expected: self.key_id() });
        }
        let (wrap_nonce, rest) = rest.split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_KEY_LEN);
        let (data_nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let wrapper = XChaCha20Poly1305::new(self.master.as_slice().into());
        let data_key = Zeroizing::new(
            wrapper
                .decrypt(XNonce::from_slice(wrap_nonce), Payload { msg: wrapped, aad: header })
                .map_err(|_| CryptoError::Corrupt)?,
        );
        let cipher = XChaCha20Poly1305::new_from_slice(&data_key).map_err(|_| CryptoError::Corrupt)?;
        cipher
            .decrypt(XNonce::from_slice(data_nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| CryptoError::Corrupt)
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_str(&self, sealed: &[u8], aad: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed, aad.as_bytes())?).map_err(|_| CryptoError::Corrupt)
    }

    /// A keyed, deterministic index of `value` within `domain` (hex), for equality lookups
    /// on sealed data without storing the plaintext.
    pub fn blind_index(&self, domain: &str, value: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.index_key.as_slice()).expect("HMAC takes any key length");
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }
}

fn derive(master: &[u8; 32], purpose: &str) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(format!("embargo {purpose} v1").as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&mac.finalize().into_bytes());
    key
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let mode =
        fs::metadata(path).map_err(|source| CryptoError::KeyFile { path: shown.clone(), source })?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyFileTooOpen { path: shown, mode: mode & 0o777 });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), CryptoError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_place() {
        let keys = Keyring::generate();
        let sealed = keys.seal(b"the canary", b"reports.body:EMB-2026-1");
        assert!(!sealed.windows(10).any(|w| w == b"the canary"));
        assert_eq!(keys.open(&sealed, b"reports.body:EMB-2026-1").unwrap(), b"the canary");
        assert!(matches!(keys.open(&sealed, b"reports.body:EMB-2026-2"), Err(CryptoError::Corrupt)));
        let other = Keyring::generate();
        assert!(matches!(other.open(&sealed, b"reports.body:EMB-2026-1"), Err(CryptoError::WrongKey { .. })));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(keys.open(&flipped, b"reports.body:EMB-2026-1"), Err(CryptoError::Corrupt)));
        assert!(matches!(keys.open(&sealed[..10], b"x"), Err(CryptoError::Corrupt)));
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let keys = Keyring::generate();
        assert_ne!(keys.seal(b"same", b"a"), keys.seal(b"same", b"a"));
    }

    #[test]
    fn derived_keys_are_stable_per_master_key_and_differ_per_purpose() {
        let keys = Keyring::from_bytes([7u8; 32]);
        let bands = keys.derived_key("near-duplicate bands");
        assert_eq!(*bands, *Keyring::from_bytes([7u8; 32]).derived_key("near-duplicate bands"));
        assert_ne!(*bands, *keys.derived_key("something else"));
        assert_ne!(*bands, *Keyring::from_bytes([8u8; 32]).derived_key("near-duplicate bands"));
        // The blind-index key is the derived key of its purpose: existing indexes stay valid.
        assert_eq!(*keys.index_key, *keys.derived_key("blind index"));
    }

    #[test]
    fn blind_indexes_are_deterministic_keyed_and_domain_separated() {
        let keys = Keyring::generate();
        let a = keys.blind_index("reporter.email", b"alice@example.org");
        assert_eq!(a, keys.blind_index("reporter.email", b"alice@example.org"));
        assert_ne!(a, keys.blind_index("message.id", b"alice@example.org"));
        assert_ne!(a, Keyring::generate().blind_index("reporter.email", b"alice@example.org"));
    }

    #[test]
    fn the_key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = Keyring::load_or_create(dir.path(), None).unwrap();
        assert_eq!(source, KeySource::Generated);
        let (again, source) = Keyring::load_or_create(dir.path(), None).unwrap();
        assert_eq!(source, KeySource::File);
        assert_eq!(first.key_id(), again.key_id());
        let sealed = first.seal(b"x", b"y");
        assert_eq!(again.open(&sealed, b"y").unwrap(), b"x");
        assert_eq!(Keyring::key_id_of(&sealed), Some(first.key_id()));
        assert_eq!(Keyring::key_id_of(b"plain"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE_NAME);
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keyring::load_or_create(dir.path(), None).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn keys_from_the_environment_must_be_32_bytes() {
        assert!(Keyring::from_base64("c2hvcnQ=").is_err());
        let good = BASE64.encode([7u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        let (keys, source) = Keyring::load_or_create(dir.path(), Some(&good)).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(keys.key_id(), Keyring::from_bytes([7u8; 32]).key_id());
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }

    proptest! {
        #[test]
        fn any_value_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2048), aad in ".{0,40}") {
            let keys = Keyring::from_bytes([42u8; 32]);
            let sealed = keys.seal(&data, aad.as_bytes());
            prop_assert_eq!(sealed.len(), data.len() + OVERHEAD);
            prop_assert_eq!(keys.open(&sealed, aad.as_bytes()).unwrap(), data);
        }
    }
}
