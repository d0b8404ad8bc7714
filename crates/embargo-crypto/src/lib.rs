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

pub mod checkpoint;

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

/// The instance's keys: the master key that seals, older master keys that still open
/// (during a rotation), and the keys derived for other purposes.
///
/// The keys sit behind a lock so that a running process can take up a rotated master key
/// ([`Keyring::adopt`]) without restarting: every `Arc<Keyring>` holder sees it at once.
pub struct Keyring {
    keys: std::sync::RwLock<std::sync::Arc<Keys>>,
}

struct Keys {
    current: Master,
    previous: Vec<Master>,
    /// What derived keys (blind indexes, band keys) come from: the first master key of the
    /// instance. A rotation re-wraps data keys but keeps this, so that every blind index
    /// stays valid (ADR 30).
    root: Zeroizing<[u8; 32]>,
    index_key: Zeroizing<[u8; 32]>,
}

#[derive(Clone)]
struct Master {
    key: Zeroizing<[u8; 32]>,
    id: [u8; 4],
}

impl Master {
    fn new(bytes: [u8; 32]) -> Self {
        let key = Zeroizing::new(bytes);
        let digest = Sha256::digest(key.as_slice());
        Self { key, id: [digest[0], digest[1], digest[2], digest[3]] }
    }
}

/// The name of the file with older master keys kept during a rotation (one base64 key a line).
pub const PREVIOUS_KEY_FILE_NAME: &str = "master.key.previous";

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("key_id", &self.key_id()).finish_non_exhaustive()
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
        let current = Master::new(bytes);
        let root = current.key.clone();
        Self::build(current, Vec::new(), root)
    }

    fn build(current: Master, previous: Vec<Master>, root: Zeroizing<[u8; 32]>) -> Self {
        let index_key = derive(&root, "blind index");
        Self { keys: std::sync::RwLock::new(std::sync::Arc::new(Keys { current, previous, root, index_key })) }
    }

    fn keys(&self) -> std::sync::Arc<Keys> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// A key for `purpose` derived from the instance's derivation root (HMAC-SHA-256 of
    /// `embargo <purpose> v1` under it, as the blind-index key is): stable for the instance,
    /// also across master key rotations, different per purpose, and useless without the keys.
    pub fn derived_key(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        derive(&self.keys().root, purpose)
    }

    /// The derivation root (the instance's first master key), to keep sealed in the database
    /// before a rotation (see `embargo_store::keys`).
    pub fn derivation_root(&self) -> Zeroizing<[u8; 32]> {
        self.keys().root.clone()
    }

    /// Uses `root` for derived keys from now on (read from the database after a rotation).
    pub fn set_derivation_root(&self, root: [u8; 32]) {
        let mut guard = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = &**guard;
        let root = Zeroizing::new(root);
        let index_key = derive(&root, "blind index");
        *guard = std::sync::Arc::new(Keys {
            current: keys.current.clone(),
            previous: keys.previous.clone(),
            root,
            index_key,
        });
    }

    /// Takes up the master keys of `other` (its sealing key and its older keys), keeping
    /// this keyring's derivation root: a running process adopting a rotated key.
    pub fn adopt(&self, other: &Keyring) {
        let theirs = other.keys();
        let mut guard = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = &**guard;
        *guard = std::sync::Arc::new(Keys {
            current: theirs.current.clone(),
            previous: theirs.previous.clone(),
            root: keys.root.clone(),
            index_key: keys.index_key.clone(),
        });
    }

    /// This keyring with older master keys that still open values (not seal them).
    pub fn with_previous(self, previous: Vec<[u8; 32]>) -> Self {
        let keys = self.keys();
        let previous: Vec<Master> = previous.into_iter().map(Master::new).filter(|m| m.id != keys.current.id).collect();
        Self::build(keys.current.clone(), previous, keys.root.clone())
    }

    /// The ids (hex) of the older master keys this keyring still opens.
    pub fn previous_key_ids(&self) -> Vec<String> {
        self.keys().previous.iter().map(|m| hex::encode(m.id)).collect()
    }

    /// Whether a value sealed under the key with this id (hex) opens here.
    pub fn knows(&self, key_id: &str) -> bool {
        let keys = self.keys();
        std::iter::once(&keys.current).chain(&keys.previous).any(|m| hex::encode(m.id) == key_id)
    }

    /// The current master key in base64 (for a backup, or the key file).
    pub fn current_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(self.keys().current.key.as_slice()))
    }

    /// The older master keys in base64, one a line (the previous-keys file's text).
    pub fn previous_base64(&self) -> Zeroizing<String> {
        let keys = self.keys();
        Zeroizing::new(keys.previous.iter().map(|m| format!("{}\n", BASE64.encode(m.key.as_slice()))).collect())
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
            let text = keyring.current_base64();
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
        Self::load_with_previous(data_dir, from_env, std::env::var("EMBARGO_MASTER_KEY_PREVIOUS").ok().as_deref())
    }

    /// [`Keyring::load`], with the older keys of a rotation from `previous_env` (base64 keys
    /// separated by white space or commas) when the key comes from the environment, else
    /// from `<data_dir>/master.key.previous` when that file exists.
    pub fn load_with_previous(
        data_dir: &Path,
        from_env: Option<&str>,
        previous_env: Option<&str>,
    ) -> Result<Option<(Self, KeySource)>, CryptoError> {
        if let Some(text) = from_env {
            let previous = parse_keys(previous_env.unwrap_or_default())?;
            return Ok(Some((Self::from_base64(text)?.with_previous(previous), KeySource::Environment)));
        }
        let path = data_dir.join(KEY_FILE_NAME);
        match fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                let previous_path = data_dir.join(PREVIOUS_KEY_FILE_NAME);
                let previous = match fs::read_to_string(&previous_path) {
                    Ok(text) => {
                        check_private(&previous_path)?;
                        parse_keys(&text)?
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(source) => {
                        return Err(CryptoError::KeyFile { path: previous_path.display().to_string(), source });
                    }
                };
                Ok(Some((Self::from_base64(&text)?.with_previous(previous), KeySource::File)))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CryptoError::KeyFile { path: path.display().to_string(), source }),
        }
    }

    /// The key id (hex), safe to log.
    pub fn key_id(&self) -> String {
        hex::encode(self.keys().current.id)
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
        wrap_into(&mut out, &self.keys().current, data_key.as_slice());

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
        let data_key = self.unwrap_data_key(sealed)?;
        let (data_nonce, ciphertext) = sealed[HEADER_LEN + NONCE_LEN + WRAPPED_KEY_LEN..].split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new_from_slice(&data_key).map_err(|_| CryptoError::Corrupt)?;
        cipher
            .decrypt(XNonce::from_slice(data_nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| CryptoError::Corrupt)
    }

    fn unwrap_data_key(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            return Err(CryptoError::Corrupt);
        }
        let keys = self.keys();
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let Some(master) = std::iter::once(&keys.current).chain(&keys.previous).find(|m| header[1..] == m.id) else {
            return Err(CryptoError::WrongKey {
                found: hex::encode(&header[1..]),
                expected: hex::encode(keys.current.id),
            });
        };
        let (wrap_nonce, rest) = rest.split_at(NONCE_LEN);
        let wrapped = &rest[..WRAPPED_KEY_LEN];
        let wrapper = XChaCha20Poly1305::new(master.key.as_slice().into());
        Ok(Zeroizing::new(
            wrapper
                .decrypt(XNonce::from_slice(wrap_nonce), Payload { msg: wrapped, aad: header })
                .map_err(|_| CryptoError::Corrupt)?,
        ))
    }

    /// A sealed value's data key wrapped again under the current master key, the data
    /// nonce and ciphertext unchanged (no associated data is needed: only the wrapping is
    /// redone). `None` when it is sealed under the current key already.
    pub fn rewrap(&self, sealed: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        let current = self.keys().current.clone();
        if sealed.len() >= HEADER_LEN && sealed[1..HEADER_LEN] == current.id {
            return Ok(None);
        }
        let data_key = self.unwrap_data_key(sealed)?;
        let mut out = Vec::with_capacity(sealed.len());
        wrap_into(&mut out, &current, &data_key);
        out.extend_from_slice(&sealed[HEADER_LEN + NONCE_LEN + WRAPPED_KEY_LEN..]);
        Ok(Some(out))
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_str(&self, sealed: &[u8], aad: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed, aad.as_bytes())?).map_err(|_| CryptoError::Corrupt)
    }

    /// A keyed, deterministic index of `value` within `domain` (hex), for equality lookups
    /// on sealed data without storing the plaintext.
    pub fn blind_index(&self, domain: &str, value: &[u8]) -> String {
        let keys = self.keys();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(keys.index_key.as_slice()).expect("HMAC takes any key length");
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Writes the header and `data_key` wrapped under `master`.
fn wrap_into(out: &mut Vec<u8>, master: &Master, data_key: &[u8]) {
    out.push(VERSION);
    out.extend_from_slice(&master.id);
    let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().expect("header length");
    let wrap_nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let wrapper = XChaCha20Poly1305::new(master.key.as_slice().into());
    let wrapped = wrapper
        .encrypt(&wrap_nonce, Payload { msg: data_key, aad: &header })
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    out.extend_from_slice(&wrap_nonce);
    out.extend_from_slice(&wrapped);
}

/// One base64 key of 32 bytes.
pub fn parse_key(text: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let decoded = Zeroizing::new(BASE64.decode(text.trim()).map_err(|_| CryptoError::BadKey)?);
    Ok(Zeroizing::new(decoded.as_slice().try_into().map_err(|_| CryptoError::BadKey)?))
}

/// Base64 keys separated by white space or commas.
fn parse_keys(text: &str) -> Result<Vec<[u8; 32]>, CryptoError> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|k| !k.is_empty())
        .map(|k| {
            let decoded = Zeroizing::new(BASE64.decode(k).map_err(|_| CryptoError::BadKey)?);
            decoded.as_slice().try_into().map_err(|_| CryptoError::BadKey)
        })
        .collect()
}

/// Writes `text` to `path` whole (mode 0600, a temporary file synced, then renamed over it,
/// and the directory synced): a crash leaves the old file or the new one, never a mix.
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Ok(dir) = fs::File::open(dir) {
        dir.sync_all()?;
    }
    Ok(())
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
        assert_eq!(*keys.keys().index_key, *keys.derived_key("blind index"));
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

    #[test]
    fn a_rotation_rewraps_values_keeps_derived_keys_and_the_old_key_only_opens() {
        let old = Keyring::from_bytes([1u8; 32]);
        let sealed = old.seal(b"report text", b"reports.body:SEC-2026-1");
        let index = old.blind_index("reporter.email", b"a@example.org");
        let bands = old.derived_key("near-duplicate bands");

        // The new key seals; the old one is kept to open; derivation stays on the old root.
        let new = Keyring::from_bytes([2u8; 32]).with_previous(vec![[1u8; 32]]);
        new.set_derivation_root(*old.derivation_root());
        assert!(new.knows(&old.key_id()) && new.knows(&new.key_id()));
        assert_eq!(new.previous_key_ids(), vec![old.key_id()]);
        assert_eq!(new.open(&sealed, b"reports.body:SEC-2026-1").unwrap(), b"report text");
        assert_eq!(new.blind_index("reporter.email", b"a@example.org"), index);
        assert_eq!(*new.derived_key("near-duplicate bands"), *bands);

        let rewrapped = new.rewrap(&sealed).unwrap().expect("sealed under the old key");
        assert_eq!(rewrapped.len(), sealed.len());
        assert_eq!(Keyring::key_id_of(&rewrapped), Some(new.key_id()));
        assert!(new.rewrap(&rewrapped).unwrap().is_none(), "already under the current key");
        // Once re-wrapped, the old key alone no longer opens it, and the new key alone does.
        assert!(matches!(old.open(&rewrapped, b"reports.body:SEC-2026-1"), Err(CryptoError::WrongKey { .. })));
        let only_new = Keyring::from_bytes([2u8; 32]);
        assert_eq!(only_new.open(&rewrapped, b"reports.body:SEC-2026-1").unwrap(), b"report text");
        // The place binding is untouched by the re-wrap.
        assert!(matches!(new.open(&rewrapped, b"reports.body:SEC-2026-2"), Err(CryptoError::Corrupt)));
        // A value under a key the keyring does not hold is not re-wrapped.
        let stranger = Keyring::from_bytes([3u8; 32]).seal(b"x", b"y");
        assert!(matches!(new.rewrap(&stranger), Err(CryptoError::WrongKey { .. })));

        // A running process adopts the rotated keys and keeps its derivation root.
        let running = Keyring::from_bytes([1u8; 32]);
        running.adopt(&Keyring::from_bytes([2u8; 32]).with_previous(vec![[1u8; 32]]));
        assert_eq!(running.key_id(), new.key_id());
        assert_eq!(running.blind_index("reporter.email", b"a@example.org"), index);
        assert_eq!(Keyring::key_id_of(&running.seal(b"z", b"w")), Some(new.key_id()));
    }

    #[test]
    fn previous_keys_are_read_from_their_private_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Keyring::load_or_create(dir.path(), None).unwrap();
        write_private_file(&dir.path().join(PREVIOUS_KEY_FILE_NAME), &BASE64.encode([9u8; 32])).unwrap();
        let (loaded, _) = Keyring::load_with_previous(dir.path(), None, None).unwrap().unwrap();
        assert_eq!(loaded.key_id(), first.key_id());
        assert_eq!(loaded.previous_key_ids(), vec![Keyring::from_bytes([9u8; 32]).key_id()]);
        let env = format!("{},{}", BASE64.encode([5u8; 32]), BASE64.encode([6u8; 32]));
        let (from_env, _) =
            Keyring::load_with_previous(dir.path(), Some(&BASE64.encode([4u8; 32])), Some(&env)).unwrap().unwrap();
        assert_eq!(from_env.previous_key_ids().len(), 2);
        assert!(Keyring::load_with_previous(dir.path(), Some(&BASE64.encode([4u8; 32])), Some("bad")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(PREVIOUS_KEY_FILE_NAME);
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert!(Keyring::load_with_previous(dir.path(), None, None).is_err());
        }
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
