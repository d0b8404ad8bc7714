//! Writes the fuzzing key (`fuzz/key.asc`) when it is empty, and the seeds that need it:
//! mail encrypted to it as PGP/MIME and inline PGP, signed and not. Run from `fuzz/` with
//! `cargo run --release --bin make-seeds` (twice the first time: the key is compiled in).

use std::fs;

use embargo_mail::openpgp::{self, InstanceKey};

fn main() {
    if fs::read_to_string("key.asc").unwrap_or_default().trim().is_empty() {
        let key = InstanceKey::generate("Embargo fuzzing <fuzz@example.org>").unwrap();
        fs::write("key.asc", key.to_armored_secret().unwrap()).unwrap();
        println!("wrote key.asc; run again to write the encrypted seeds");
        return;
    }
    let key = embargo_fuzz::key();
    let certificate = key.public_armored().unwrap();
    let inner = "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain; \
                 charset=utf-8\r\n\r\nThe admin page at /admin lacks a CSRF token.\r\n--in\r\nContent-Type: \
                 application/octet-stream\r\nContent-Disposition: attachment; filename=\"poc.py\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\ncHJpbnQoMSkK\r\n--in--\r\n";
    let encrypted = openpgp::encrypt_to(&certificate, inner.as_bytes()).unwrap();
    let signed = openpgp::sign_and_encrypt_to(&certificate, inner.as_bytes(), key).unwrap();
    let headers = "From: Reporter <r@example.net>\r\nTo: security@example.org\r\nSubject: ...\r\n\
                   Message-ID: <1@example.net>\r\nMIME-Version: 1.0\r\n";
    for (name, armored) in [("pgp-mime", &encrypted), ("pgp-mime-signed", &signed)] {
        let mail = format!(
            "{headers}Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; \
             boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\n\
             Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{armored}\r\n--b--\r\n"
        );
        fs::write(format!("corpus/mail/{name}.eml"), mail).unwrap();
    }
    let text = openpgp::encrypt_to(&certificate, "Inline: the token never expires.".as_bytes()).unwrap();
    fs::write(
        "corpus/mail/pgp-inline.eml",
        format!("{headers}Content-Type: text/plain\r\n\r\nHello,\r\n\r\n{text}\r\n> quoted\r\n{text}\r\n"),
    )
    .unwrap();
    println!("wrote the encrypted seeds");
}
