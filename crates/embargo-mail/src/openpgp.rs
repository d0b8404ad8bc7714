//! OpenPGP for mail: the instance's own key, decrypting what reporters encrypt to it, and
//! encrypting to recipients' keys. Pure Rust (rPGP).
//!
//! The instance key is a v4 Curve25519 key (Ed25519 primary for certification and signing,
//! Curve25519 ECDH subkey for encryption): the form every deployed OpenPGP implementation,
//! GnuPG 2.2 included, reads. The server never does RSA decryption with its own key, which
//! keeps it clear of the `rsa` crate's timing side channel (RUSTSEC-2023-0071).

use std::io::Cursor;

use pgp::composed::{
    ArmorOptions, Deserializable, EncryptionCaps, KeyType, Message, MessageBuilder, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::{KeyDetails, Password};

/// What can go wrong with OpenPGP data.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The key could not be generated or serialised.
    #[error("OpenPGP key: {0}")]
    Key(String),
    /// The input is not an OpenPGP message or key we can read.
    #[error("not readable OpenPGP data: {0}")]
    Malformed(String),
    /// The message is not encrypted to this instance's key.
    #[error("the message is not encrypted to this instance's key: {0}")]
    NotForUs(String),
    /// Encryption failed (for example, the key has no encryption subkey).
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// The instance's secret key.
#[derive(Clone)]
pub struct InstanceKey {
    key: SignedSecretKey,
    /// Earlier instance keys, kept after a rotation only to decrypt what was encrypted to
    /// them (never to sign; ADR 30).
    retired: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceKey").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

/// A decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext.
    pub data: Vec<u8>,
    /// Whether the plaintext carried an OpenPGP signature.
    pub signed: bool,
    /// With a signer's certificate given: whether the signature verified with it.
    pub verified: Option<bool>,
}

impl InstanceKey {
    /// Generates a new key for `user_id` (for example `Example security <security@example.org>`).
    pub fn generate(user_id: &str) -> Result<Self, PgpError> {
        let mut encrypt = SubkeyParamsBuilder::default();
        encrypt
            .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
            .can_sign(false)
            .can_encrypt(EncryptionCaps::All)
            .can_authenticate(false);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            // Without stated preferences, senders such as GnuPG fall back to SHA-1 for their
            // signatures, which no longer verify with Ed25519 keys.
            .preferred_hash_algorithms(vec![HashAlgorithm::Sha512, HashAlgorithm::Sha256].into())
            .preferred_symmetric_algorithms(vec![SymmetricKeyAlgorithm::AES256, SymmetricKeyAlgorithm::AES128].into())
            .preferred_compression_algorithms(
                vec![pgp::types::CompressionAlgorithm::ZLIB, pgp::types::CompressionAlgorithm::ZIP].into(),
            )
            .primary_user_id(user_id.into())
            .subkeys(vec![encrypt.build().map_err(|e| PgpError::Key(e.to_string()))?]);
        let key = params
            .build()
            .map_err(|e| PgpError::Key(e.to_string()))?
            .generate(rand::thread_rng())
            .map_err(|e| PgpError::Key(e.to_string()))?;
        Ok(Self { key, retired: Vec::new() })
    }

    /// Reads a key stored with [`InstanceKey::to_armored_secret`].
    pub fn from_armored_secret(text: &str) -> Result<Self, PgpError> {
        let (key, _) = SignedSecretKey::from_string(text).map_err(|e| PgpError::Malformed(e.to_string()))?;
        key.verify_bindings().map_err(|e| PgpError::Malformed(e.to_string()))?;
        Ok(Self { key, retired: Vec::new() })
    }

    /// This key, also decrypting with `retired` keys (earlier instance keys kept after a
    /// rotation). Signing and publishing use only this key.
    pub fn with_retired(mut self, retired: Vec<InstanceKey>) -> Self {
        self.retired = retired.into_iter().map(|k| k.key).collect();
        self
    }

    /// The fingerprints of the retired keys this key also decrypts with.
    pub fn retired_fingerprints(&self) -> Vec<String> {
        self.retired.iter().map(|k| format!("{}", k.fingerprint()).to_uppercase()).collect()
    }

    /// The secret key, armored (store it sealed).
    pub fn to_armored_secret(&self) -> Result<String, PgpError> {
        self.key.to_armored_string(ArmorOptions::default()).map_err(|e| PgpError::Key(e.to_string()))
    }

    /// The public key (certificate), armored, for publishing.
    pub fn public_armored(&self) -> Result<String, PgpError> {
        SignedPublicKey::from(self.key.clone())
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// The fingerprint in upper-case hex.
    pub fn fingerprint(&self) -> String {
        format!("{}", self.key.fingerprint()).to_uppercase()
    }

    /// Signs `text` with a cleartext signature (`-----BEGIN PGP SIGNED MESSAGE-----`), as
    /// RFC 9116 recommends for security.txt.
    pub fn clearsign(&self, text: &str) -> Result<String, PgpError> {
        pgp::composed::CleartextSignedMessage::sign(rand::thread_rng(), text, &self.key.primary_key, &Password::empty())
            .and_then(|signed| signed.to_armored_string(ArmorOptions::default()))
            .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// A detached, armored signature of `data` (`.asc` files beside published documents,
    /// such as CSAF advisories): binary mode, SHA-512.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, PgpError> {
        pgp::composed::DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha512,
            data,
        )
        .and_then(|signature| signature.to_armored_string(ArmorOptions::default()))
        .map_err(|e| PgpError::Key(e.to_string()))
    }

    /// Decrypts an OpenPGP message (armored or binary) encrypted to this key, decompressing
    /// as needed, keeping at most `limit` bytes of plaintext (compressed packets can expand a
    /// thousandfold). Signatures inside are noted, not yet verified.
    pub fn decrypt(&self, data: &[u8], limit: usize) -> Result<Decrypted, PgpError> {
        self.decrypt_verify(data, limit, None)
    }

    /// [`InstanceKey::decrypt`], also verifying a signature against `signer` (an armored
    /// certificate: its primary key or any subkey may have signed).
    pub fn decrypt_verify(&self, data: &[u8], limit: usize, signer: Option<&str>) -> Result<Decrypted, PgpError> {
        let text = std::str::from_utf8(data).ok().filter(|t| t.contains("-----BEGIN PGP MESSAGE-----"));
        let parse = || {
            match text {
                Some(text) => Message::from_string(text).map(|(m, _)| m),
                None => Message::from_bytes(Cursor::new(data.to_vec())),
            }
            .map_err(|e| PgpError::Malformed(e.to_string()))
        };
        if !parse()?.is_encrypted() {
            return Err(PgpError::Malformed("the message is not encrypted".into()));
        }
        // The current key first, then the retired ones (mail encrypted to a key published
        // before a rotation is still read).
        let mut failure = None;
        let mut decrypted = None;
        for key in std::iter::once(&self.key).chain(&self.retired) {
            match parse()?.decrypt(&Password::empty(), key) {
                Ok(message) => {
                    decrypted = Some(message);
                    break;
                }
                Err(e) => failure = failure.or(Some(e.to_string())),
            }
        }
        let Some(mut message) = decrypted else {
            return Err(PgpError::NotForUs(failure.unwrap_or_default()));
        };
        if message.is_compressed() {
            message = message.decompress().map_err(|e| PgpError::Malformed(e.to_string()))?;
        }
        let signed = message.is_signed() || message.is_one_pass_signed();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut message, limit as u64 + 1), &mut data)
            .map_err(|e| PgpError::Malformed(e.to_string()))?;
        if data.len() > limit {
            return Err(PgpError::Malformed(format!(
                "the decrypted message is larger than the limit of {limit} bytes for decoded content"
            )));
        }
        let verified = match (signer, signed) {
            (Some(text), true) => {
                let cert = read_certificate(text)?;
                let by_primary = message.verify(&cert.primary_key).is_ok();
                Some(by_primary || cert.public_subkeys.iter().any(|sub| message.verify(&sub.key).is_ok()))
            }
            _ => None,
        };
        Ok(Decrypted { data, signed, verified })
    }
}

/// Encrypts `data` to the first usable encryption key of `certificate` (armored), producing
/// an armored message.
pub fn encrypt_to(certificate: &str, data: &[u8]) -> Result<String, PgpError> {
    let cert = read_certificate(certificate)?;
    let mut builder =
        MessageBuilder::from_bytes("", data.to_vec()).seipd_v1(rand::thread_rng(), SymmetricKeyAlgorithm::AES256);
    let subkey = encryption_subkey(&cert)?;
    builder.encrypt_to_key(rand::thread_rng(), subkey).map_err(|e| PgpError::Encrypt(e.to_string()))?;
    builder.to_armored_string(rand::thread_rng(), ArmorOptions::default()).map_err(|e| PgpError::Encrypt(e.to_string()))
}

/// Signs `data` with the instance key and encrypts it to `certificate` (armored), in one
/// OpenPGP message (the combined method of RFC 3156 §6.2): the recipient decrypts and
/// verifies that the team sent it.
pub fn sign_and_encrypt_to(certificate: &str, data: &[u8], signer: &InstanceKey) -> Result<String, PgpError> {
    let cert = read_certificate(certificate)?;
    let mut builder =
        MessageBuilder::from_bytes("", data.to_vec()).seipd_v1(rand::thread_rng(), SymmetricKeyAlgorithm::AES256);
    let subkey = encryption_subkey(&cert)?;
    builder.encrypt_to_key(rand::thread_rng(), subkey).map_err(|e| PgpError::Encrypt(e.to_string()))?;
    builder.sign(&signer.key.primary_key, Password::empty(), HashAlgorithm::Sha512);
    builder.to_armored_string(rand::thread_rng(), ArmorOptions::default()).map_err(|e| PgpError::Encrypt(e.to_string()))
}

/// Verifies a detached signature (`signature`: armored, as in an `.asc` file, or binary, as in
/// a `.sig` file) of `data` with `certificate` (armored): its primary key or any subkey may
/// have signed. `Ok(false)` when the signature is readable but was not made by that key
/// over these bytes; [`PgpError::Malformed`] when the certificate or signature is unreadable.
pub fn verify_detached(certificate: &str, data: &[u8], signature: &[u8]) -> Result<bool, PgpError> {
    use pgp::composed::DetachedSignature;
    let cert = read_certificate(certificate)?;
    let armored = std::str::from_utf8(signature).ok().filter(|t| t.contains("-----BEGIN PGP SIGNATURE-----"));
    let signature = match armored {
        Some(text) => DetachedSignature::from_string(text).map(|(s, _)| s),
        None => DetachedSignature::from_bytes(Cursor::new(signature)),
    }
    .map_err(|e| PgpError::Malformed(e.to_string()))?;
    Ok(signature.verify(&cert.primary_key, data).is_ok()
        || cert.public_subkeys.iter().any(|sub| signature.verify(&sub.key, data).is_ok()))
}

/// Checks that `text` is an armored OpenPGP certificate (public key) whose bindings verify;
/// returns its fingerprint. (A signing key need not encrypt.)
pub fn signing_certificate_fingerprint(text: &str) -> Result<String, PgpError> {
    let cert = read_certificate(text)?;
    Ok(format!("{}", cert.fingerprint()).to_uppercase())
}

/// Checks that `text` is an OpenPGP certificate (public key) that can receive encrypted
/// mail; returns its fingerprint.
pub fn certificate_fingerprint(text: &str) -> Result<String, PgpError> {
    let cert = read_certificate(text)?;
    encryption_subkey(&cert)?;
    Ok(format!("{}", cert.fingerprint()).to_uppercase())
}

/// Parses an armored certificate and checks its binding signatures.
fn read_certificate(text: &str) -> Result<SignedPublicKey, PgpError> {
    let (cert, _) = SignedPublicKey::from_string(text).map_err(|e| PgpError::Malformed(e.to_string()))?;
    cert.verify_bindings().map_err(|e| PgpError::Malformed(e.to_string()))?;
    Ok(cert)
}

/// The subkey to encrypt to: the newest whose binding signature carries an encryption key
/// flag (an RSA subkey can "encrypt" by algorithm while being flagged for signing only).
/// A revoked certificate, or one whose primary key expired, has none; revoked and expired
/// subkeys are skipped.
fn encryption_subkey(cert: &SignedPublicKey) -> Result<&pgp::composed::SignedPublicSubKey, PgpError> {
    use pgp::packet::SignatureType;
    let now = u64::from(pgp::types::Timestamp::now().as_secs());
    let expired = |created: pgp::types::Timestamp, signatures: &[pgp::packet::Signature]| {
        // The newest self-signature that says anything about expiry decides.
        signatures
            .iter()
            .filter(|sig| sig.key_expiration_time().is_some())
            .max_by_key(|sig| sig.created().map(|t| t.as_secs()))
            .and_then(|sig| sig.key_expiration_time())
            .is_some_and(|validity| {
                validity.as_secs() != 0 && u64::from(created.as_secs()) + u64::from(validity.as_secs()) <= now
            })
    };
    if !cert.details.revocation_signatures.is_empty() {
        return Err(PgpError::Encrypt("the key is revoked".into()));
    }
    let self_signatures: Vec<pgp::packet::Signature> = cert
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter().cloned())
        .chain(cert.details.direct_signatures.iter().cloned())
        .collect();
    if expired(cert.primary_key.created_at(), &self_signatures) {
        return Err(PgpError::Encrypt("the key has expired".into()));
    }
    let flagged: Vec<&pgp::composed::SignedPublicSubKey> = cert
        .public_subkeys
        .iter()
        .filter(|k| k.algorithm().can_encrypt())
        .filter(|k| k.signatures.iter().any(|sig| sig.key_flags().encrypt_comms() || sig.key_flags().encrypt_storage()))
        .collect();
    if flagged.is_empty() {
        return Err(PgpError::Encrypt("the key has no subkey flagged for encryption".into()));
    }
    flagged
        .into_iter()
        .filter(|k| !k.signatures.iter().any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation)))
        .filter(|k| !expired(k.created_at(), &k.signatures))
        .max_by_key(|k| k.created_at())
        .ok_or_else(|| PgpError::Encrypt("every encryption subkey of the key is revoked or expired".into()))
}

/// Finds an inline-PGP block (`-----BEGIN PGP MESSAGE-----` ... `-----END PGP MESSAGE-----`)
/// in a text body.
pub fn inline_block(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN PGP MESSAGE-----")?;
    let end_marker = "-----END PGP MESSAGE-----";
    let end = text[start..].find(end_marker)? + start + end_marker.len();
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_signature_verifies_with_its_key_only_and_over_its_bytes_only() {
        let key = InstanceKey::generate("Releases <releases@example.org>").unwrap();
        let public = key.public_armored().unwrap();
        let sums = b"0123  app-1.0.tar.gz\n";
        let armored = key.sign_detached(sums).unwrap();
        assert!(verify_detached(&public, sums, armored.as_bytes()).unwrap());
        assert!(!verify_detached(&public, b"0124  app-1.0.tar.gz\n", armored.as_bytes()).unwrap());
        let other = InstanceKey::generate("Other <o@example.org>").unwrap().public_armored().unwrap();
        assert!(!verify_detached(&other, sums, armored.as_bytes()).unwrap());
        // Binary (.sig) too, from the armored form.
        let (parsed, _) = pgp::composed::DetachedSignature::from_string(&armored).unwrap();
        let binary = pgp::ser::Serialize::to_bytes(&parsed).unwrap();
        assert!(verify_detached(&public, sums, &binary).unwrap());
        assert!(matches!(verify_detached(&public, sums, b"not a signature"), Err(PgpError::Malformed(_))));
        assert!(matches!(verify_detached("garbage", sums, armored.as_bytes()), Err(PgpError::Malformed(_))));
        assert_eq!(signing_certificate_fingerprint(&public).unwrap(), key.fingerprint());
    }

    #[test]
    fn a_generated_key_round_trips_and_decrypts_what_is_encrypted_to_it() {
        let key = InstanceKey::generate("Example security <security@example.org>").unwrap();
        let stored = key.to_armored_secret().unwrap();
        let again = InstanceKey::from_armored_secret(&stored).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint());
        assert_eq!(key.fingerprint().len(), 40);
        let public = key.public_armored().unwrap();
        assert!(public.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert!(!public.contains("PRIVATE"));

        let armored = encrypt_to(&public, b"heap overflow in parse()").unwrap();
        assert!(!armored.contains("heap overflow"));
        let body = format!("Hi,\n\n{armored}\n\nthanks");
        let block = inline_block(&body).unwrap();
        let decrypted = again.decrypt(block.as_bytes(), 1 << 20).unwrap();
        assert_eq!(decrypted.data, b"heap overflow in parse()");

        let other = InstanceKey::generate("Other <o@example.org>").unwrap();
        assert!(matches!(other.decrypt(block.as_bytes(), 1 << 20), Err(PgpError::NotForUs(_))));
        assert!(matches!(again.decrypt(block.as_bytes(), 5), Err(PgpError::Malformed(_))), "plaintext over the limit");
        assert!(matches!(
            key.decrypt(b"-----BEGIN PGP MESSAGE-----\ngarbage\n-----END PGP MESSAGE-----", 1 << 20),
            Err(PgpError::Malformed(_))
        ));
    }
}
