//! A software WebAuthn authenticator for use-case tests: it answers the server's options the
//! way a browser and a platform authenticator would (ES256 on P-256, attestation `none`, user
//! presence and verification), with the origin, relying party and counter the test chooses,
//! so that tests can make answers no honest browser would send (another origin, a counter
//! that goes back, a signature over other data). The browser tests use Chromium's virtual
//! authenticator instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One credential of the soft authenticator.
#[derive(Clone)]
pub struct SoftPasskey {
    key: SigningKey,
    /// The credential ID.
    pub credential_id: Vec<u8>,
    /// The user handle the server gave at registration.
    pub user_handle: Vec<u8>,
    /// The signature counter the next assertion carries (then incremented).
    pub counter: u32,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).expect("base64url from the server")
}

fn random<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// CBOR head of a byte string of `len` bytes (major type 2).
fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 24 {
        out.push(0x40 | u8::try_from(len).expect("small"));
    } else if len < 256 {
        out.extend([0x58, u8::try_from(len).expect("small")]);
    } else {
        out.push(0x59);
        out.extend(u16::try_from(len).expect("not huge").to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    out.push(0x60 | u8::try_from(text.len()).expect("short"));
    out.extend_from_slice(text.as_bytes());
}

impl SoftPasskey {
    /// Answers registration options (`{"publicKey": ...}` as the server sent them) for
    /// `origin`; returns the credential and the answer's JSON.
    pub fn register(options: &Value, origin: &str) -> (SoftPasskey, String) {
        let key = options.get("publicKey").expect("publicKey");
        let rp_id = key["rp"]["id"].as_str().expect("rp.id");
        let challenge = key["challenge"].as_str().expect("challenge");
        let user_handle = unb64(key["user"]["id"].as_str().expect("user.id"));
        let signing = SigningKey::from_bytes(&random::<32>().into()).expect("a P-256 key");
        let credential_id = random::<16>().to_vec();
        let point = signing.verifying_key().to_encoded_point(false);
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut cose, point.x().expect("x"));
        cose.push(0x22);
        cbor_bytes(&mut cose, point.y().expect("y"));
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend(u16::try_from(credential_id.len()).expect("short").to_be_bytes());
        auth_data.extend(&credential_id);
        auth_data.extend(&cose);
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let client_data =
            json!({ "type": "webauthn.create", "challenge": challenge, "origin": origin, "crossOrigin": false })
                .to_string();
        let answer = json!({
            "id": b64(&credential_id),
            "rawId": b64(&credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(client_data.as_bytes()),
                "transports": ["internal"],
            },
            "extensions": {},
        });
        (SoftPasskey { key: signing, credential_id, user_handle, counter: 1 }, answer.to_string())
    }

    /// Answers authentication options for `origin` with the current counter (then
    /// incremented); `rp_id` is the relying party the authenticator believes it serves.
    pub fn assert_for(&mut self, options: &Value, origin: &str, rp_id: &str) -> String {
        let challenge = options["publicKey"]["challenge"].as_str().expect("challenge");
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x05); // user present, user verified
        auth_data.extend(self.counter.to_be_bytes());
        self.counter += 1;
        let client_data =
            json!({ "type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": false })
                .to_string();
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(client_data.as_bytes()),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// Answers authentication options for `origin`, the relying party being its host.
    pub fn assert(&mut self, options: &Value, origin: &str) -> String {
        let host = origin.split("://").nth(1).unwrap_or(origin).split([':', '/']).next().unwrap_or("").to_owned();
        self.assert_for(options, origin, &host)
    }
}
