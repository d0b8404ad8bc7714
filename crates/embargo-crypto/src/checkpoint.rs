//! The audit checkpoint key: an Ed25519 key that signs checkpoints of the audit chain's
//! head (sequence number, hash, time), so that a consistent rewrite or truncation of the
//! chain by someone who can write the database is detected against checkpoints exported
//! earlier (ADR 4).
//!
//! The key lives in a file beside `master.key` in the data directory
//! (`audit-checkpoint.key`, mode 0600), never in the database; its public half is written to
//! `audit-checkpoint.pub` (hex) for operators to keep with the exported checkpoints. Whoever
//! can read the data directory can sign checkpoints: the public key and the checkpoints
//! must also be kept somewhere else for them to prove anything about this machine.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use zeroize::Zeroizing;

/// The secret key file, in the data directory.
pub const KEY_FILE: &str = "audit-checkpoint.key";
/// The public key file (hex), beside it.
pub const PUBLIC_FILE: &str = "audit-checkpoint.pub";

/// What can go wrong with the checkpoint key.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointKeyError {
    /// The key file could not be read or written.
    #[error("audit checkpoint key {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("{path} does not hold an Ed25519 key (64 hex digits)")]
    BadKey {
        /// The file.
        path: String,
    },
    /// The key file is readable by other users.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// The message a checkpoint signs: a fixed label and the three fields, one per line.
pub fn checkpoint_message(seq: i64, hash: &str, at_ms: i64) -> Vec<u8> {
    format!("embargo-audit-checkpoint-v1\n{seq}\n{hash}\n{at_ms}\n").into_bytes()
}

/// The key that signs audit checkpoints.
pub struct CheckpointKey {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey").field("public", &self.public_hex()).finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CheckpointKeyError + '_ {
    move |source| CheckpointKeyError::File { path: path.display().to_string(), source }
}

impl CheckpointKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self { key: SigningKey::from_bytes(&seed) }
    }

    /// Where the key file of `data_dir` is.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(KEY_FILE)
    }

    /// Loads `<data_dir>/audit-checkpoint.key`, creating it (mode 0600, written whole then
    /// linked into place) with a new key on first use, and (re)writes the public key file
    /// beside it. Returns the key and whether it was created now.
    pub fn load_or_create(data_dir: &Path) -> Result<(Self, bool), CheckpointKeyError> {
        let path = Self::path(data_dir);
        let (key, created) = match fs::read_to_string(&path) {
            Ok(text) => (Self::parse(&path, &text)?, false),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let tmp = data_dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
                let mut options = fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let written = (|| {
                    let mut file = options.open(&tmp)?;
                    let text = Zeroizing::new(hex::encode(key.key.to_bytes()));
                    file.write_all(text.as_bytes())?;
                    file.write_all(b"\n")?;
                    file.sync_all()
                })();
                let linked = written.and_then(|()| fs::hard_link(&tmp, &path));
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => (key, true),
                    // A concurrent first use won: take its key.
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
                        (Self::parse(&path, &text)?, false)
                    }
                    Err(err) => return Err(io_error(&path)(err)),
                }
            }
            Err(err) => return Err(io_error(&path)(err)),
        };
        let public = data_dir.join(PUBLIC_FILE);
        if fs::read_to_string(&public).ok().as_deref().map(str::trim) != Some(key.public_hex().as_str()) {
            fs::write(&public, format!("{}\n", key.public_hex())).map_err(io_error(&public))?;
        }
        Ok((key, created))
    }

    fn parse(path: &Path, text: &str) -> Result<Self, CheckpointKeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io_error(path))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CheckpointKeyError::TooOpen { path: path.display().to_string(), mode: mode & 0o777 });
            }
        }
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| CheckpointKeyError::BadKey { path: path.display().to_string() })?,
        );
        let seed: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| CheckpointKeyError::BadKey { path: path.display().to_string() })?;
        Ok(Self { key: SigningKey::from_bytes(&seed) })
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Signs a checkpoint; returns the signature, hex.
    pub fn sign(&self, seq: i64, hash: &str, at_ms: i64) -> String {
        hex::encode(self.key.sign(&checkpoint_message(seq, hash, at_ms)).to_bytes())
    }
}

/// Whether `signature` (hex) is `public` (hex)'s signature of the checkpoint.
pub fn verify_checkpoint(public: &str, seq: i64, hash: &str, at_ms: i64, signature: &str) -> bool {
    let Ok(public) = hex::decode(public.trim()) else { return false };
    let Ok(public): Result<[u8; 32], _> = public.as_slice().try_into() else { return false };
    let Ok(key) = VerifyingKey::from_bytes(&public) else { return false };
    let Ok(signature) = hex::decode(signature.trim()) else { return false };
    let Ok(signature) = Signature::from_slice(&signature) else { return false };
    key.verify_strict(&checkpoint_message(seq, hash, at_ms), &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_verify_only_unchanged_and_under_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let (key, created) = CheckpointKey::load_or_create(dir.path()).unwrap();
        assert!(created);
        let (again, created) = CheckpointKey::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(key.public_hex(), again.public_hex());
        let public = fs::read_to_string(dir.path().join(PUBLIC_FILE)).unwrap();
        assert_eq!(public.trim(), key.public_hex());
        let sig = key.sign(7, "abc", 1000);
        assert!(verify_checkpoint(&key.public_hex(), 7, "abc", 1000, &sig));
        assert!(!verify_checkpoint(&key.public_hex(), 6, "abc", 1000, &sig));
        assert!(!verify_checkpoint(&key.public_hex(), 7, "abd", 1000, &sig));
        assert!(!verify_checkpoint(&key.public_hex(), 7, "abc", 1001, &sig));
        assert!(!verify_checkpoint(&CheckpointKey::generate().public_hex(), 7, "abc", 1000, &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
