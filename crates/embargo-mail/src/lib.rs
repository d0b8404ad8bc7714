//! Mail for Embargo: parsing inbound messages into what intake needs, and the built-in
//! SMTP listener ([`smtp`]).
//!
//! Everything in a message is attacker-controlled. Parsing never fails: a message that
//! cannot be parsed still yields its raw text, and the caller keeps the raw bytes, so no
//! report is lost to malformed MIME.
#![forbid(unsafe_code)]

pub mod auth;
pub mod imap;
pub mod openpgp;
pub mod outbound;
pub mod proxy_protocol;
pub mod smtp;

use mail_parser::{MessageParser, MimeHeaders};

/// The most Message-IDs (In-Reply-To and References) and header recipients looked at.
pub const MAX_THREAD_IDS: usize = 50;

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    /// File name as given (untrusted), or a generated one.
    pub filename: String,
    /// Media type as given (untrusted).
    pub media_type: String,
    /// Decoded content.
    pub data: Vec<u8>,
}

/// What intake needs from an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundMail {
    /// The From address, if there is a usable one.
    pub from_address: Option<String>,
    /// The From display name.
    pub from_name: Option<String>,
    /// Subject (decoded), empty when absent.
    pub subject: String,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// Message-IDs from In-Reply-To and References, nearest first.
    pub thread_ids: Vec<String>,
    /// Addresses from To, Cc, Delivered-To and X-Original-To (the envelope recipient is
    /// better when known; these serve the `ingest-mail` pipe).
    pub recipients: Vec<String>,
    /// The readable text: the text part, HTML reduced to text, or the raw message when it
    /// could not be parsed.
    pub text: String,
    /// Attachments.
    pub attachments: Vec<MailAttachment>,
    /// Auto-replies, bounces and list traffic: never to be answered automatically.
    pub auto_generated: bool,
    /// Whether MIME parsing succeeded.
    pub parsed: bool,
    /// OpenPGP: `None` for plain mail, else what happened to the encrypted content.
    pub pgp: Option<PgpStatus>,
    /// Whether the top-level part is `multipart/encrypted` (PGP/MIME).
    pub multipart_encrypted: bool,
    /// Every address in every `From` header, in order (more than one makes the sender
    /// ambiguous), at most [`MAX_THREAD_IDS`].
    pub from_addresses: Vec<String>,
    /// The `Return-Path` header (the envelope sender, as the delivering server recorded it),
    /// without angle brackets; empty for the null sender.
    pub return_path: Option<String>,
    /// Whether this entity's `Content-Type` says `protected-headers="v1"` (RFC 9788): its
    /// headers are the real ones of an encrypted message.
    pub protected_headers: bool,
    /// What is wrong with the message, as stable codes ([`ANOMALY_MALFORMED_MIME`],
    /// [`ANOMALY_AMBIGUOUS_SENDER`]); intake adds its own. Shown to the team beside it.
    pub anomalies: Vec<String>,
}

/// The MIME structure is broken (a multipart without its boundary, a part whose transfer
/// encoding does not decode): the text shown may be what could be recovered.
pub const ANOMALY_MALFORMED_MIME: &str = "malformed-mime";
/// More than one `From` header, or several addresses in one: who sent it is unclear.
pub const ANOMALY_AMBIGUOUS_SENDER: &str = "ambiguous-sender";

/// What became of an OpenPGP-encrypted message at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgpStatus {
    /// Decrypted with the instance key; `signed` when the plaintext carried a signature.
    Decrypted {
        /// PGP/MIME (RFC 3156) rather than inline.
        mime: bool,
        /// Whether a signature was present.
        signed: bool,
        /// Whether it verified against the sender's known key (`None`: no key to check with).
        verified: Option<bool>,
    },
    /// Encrypted, but not readable with the instance key; the ciphertext is kept as the text.
    Undecryptable(String),
}

impl PgpStatus {
    /// A short stored form: `pgp-mime`, `pgp-inline`, with `+signed`, or `undecryptable`.
    pub fn code(&self) -> String {
        match self {
            PgpStatus::Decrypted { mime, signed, verified } => format!(
                "{}{}",
                if *mime { "pgp-mime" } else { "pgp-inline" },
                match (signed, verified) {
                    (false, _) => "",
                    (true, None) => "+signed-unverified",
                    (true, Some(true)) => "+signed-verified",
                    (true, Some(false)) => "+signed-bad-signature",
                }
            ),
            PgpStatus::Undecryptable(_) => "undecryptable".into(),
        }
    }
}

/// Parses a message and decrypts PGP/MIME or inline-PGP content with the instance key:
/// the decrypted text and attachments replace the encrypted ones; sender, subject and
/// threading headers stay those of the outer message. Never fails.
pub fn parse_with_key(raw: &[u8], key: Option<&openpgp::InstanceKey>) -> InboundMail {
    parse_with_keys(raw, key, None)
}

/// [`parse_with_key`], verifying a signature inside against `signer` (the sender's armored
/// certificate) when there is one.
pub fn parse_with_keys(raw: &[u8], key: Option<&openpgp::InstanceKey>, signer: Option<&str>) -> InboundMail {
    // Without a configured bound, decrypted content may not grow far beyond what was received.
    parse_with_limit(raw, key, signer, raw.len().saturating_mul(4).max(1 << 20))
}

/// [`parse_with_keys`], keeping at most `decoded_limit` bytes of decrypted (and
/// decompressed) plaintext: a message whose plaintext is larger stays encrypted, marked
/// undecryptable with the limit named.
pub fn parse_with_limit(
    raw: &[u8],
    key: Option<&openpgp::InstanceKey>,
    signer: Option<&str>,
    decoded_limit: usize,
) -> InboundMail {
    // A parser bug must not turn a message into an endless retry: on a panic the message
    // is kept as raw text.
    std::panic::catch_unwind(|| parse_and_decrypt(raw, key, signer, decoded_limit)).unwrap_or_else(|_| InboundMail {
        text: String::from_utf8_lossy(raw).into_owned(),
        parsed: false,
        ..InboundMail::default()
    })
}

fn parse_and_decrypt(
    raw: &[u8],
    key: Option<&openpgp::InstanceKey>,
    signer: Option<&str>,
    limit: usize,
) -> InboundMail {
    let mut mail = parse(raw);
    let Some(key) = key else { return mail };
    if mail.multipart_encrypted {
        let Some(payload) = mail
            .attachments
            .iter()
            .find(|a| a.data.windows(27).any(|w| w == b"-----BEGIN PGP MESSAGE-----"))
            .map(|a| a.data.clone())
        else {
            mail.pgp = Some(PgpStatus::Undecryptable("no encrypted part found".into()));
            return mail;
        };
        match key.decrypt_verify(&payload, limit, signer) {
            Ok(decrypted) => {
                // The plaintext of PGP/MIME is a MIME entity with its own headers.
                let inner = parse(&decrypted.data);
                // Protected headers (RFC 9788): the subject inside the encrypted part is the
                // real one; the cleartext one may be a placeholder.
                if inner.protected_headers && !inner.subject.trim().is_empty() {
                    mail.subject = inner.subject;
                }
                mail.text = inner.text;
                mail.attachments = inner.attachments;
                mail.pgp =
                    Some(PgpStatus::Decrypted { mime: true, signed: decrypted.signed, verified: decrypted.verified });
            }
            Err(err) => {
                mail.text = String::from_utf8_lossy(&payload).into_owned();
                mail.pgp = Some(PgpStatus::Undecryptable(err.to_string()));
            }
        }
        return mail;
    }
    // Inline PGP: every block is decrypted (a reply may quote an earlier one), at most ten.
    let mut decrypted_any: Option<(bool, Option<bool>)> = None;
    let mut failure = None;
    let mut searched = 0;
    for _ in 0..10 {
        let Some(block) = mail.text.get(searched..).and_then(openpgp::inline_block).map(str::to_owned) else { break };
        let start = searched + mail.text[searched..].find(&block).unwrap_or(0);
        match key.decrypt_verify(block.as_bytes(), limit, signer) {
            Ok(decrypted) => {
                let plaintext = String::from_utf8_lossy(&decrypted.data).into_owned();
                mail.text.replace_range(start..start + block.len(), &plaintext);
                searched = start + plaintext.len();
                let (signed, verified) = decrypted_any.unwrap_or((false, None));
                let verified = match (verified, decrypted.verified) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (a, b) => a.or(b),
                };
                decrypted_any = Some((signed || decrypted.signed, verified));
            }
            Err(err) => {
                searched = start + block.len();
                failure.get_or_insert(err.to_string());
            }
        }
    }
    mail.pgp = match (decrypted_any, failure) {
        (Some((signed, verified)), _) => Some(PgpStatus::Decrypted { mime: false, signed, verified }),
        (None, Some(reason)) => Some(PgpStatus::Undecryptable(reason)),
        (None, None) => mail.pgp,
    };
    mail
}

/// Parses a message. Never fails; see [`InboundMail::parsed`].
pub fn parse(raw: &[u8]) -> InboundMail {
    let Some(message) = MessageParser::default().parse(raw) else {
        return InboundMail {
            text: String::from_utf8_lossy(raw).into_owned(),
            parsed: false,
            ..InboundMail::default()
        };
    };
    // Every From header, not only the one a library picks: two of them make the sender
    // ambiguous, and the choice is intake's, against the envelope.
    let mut from_addresses: Vec<String> = Vec::new();
    for value in message.header_values(mail_parser::HeaderName::From) {
        for addr in value.as_address().into_iter().flat_map(|a| a.iter()).take(MAX_THREAD_IDS) {
            if let Some(a) = addr.address().map(str::trim).filter(|a| usable_address(a))
                && from_addresses.len() < MAX_THREAD_IDS
                && !from_addresses.iter().any(|f| f.eq_ignore_ascii_case(a))
            {
                from_addresses.push(a.to_owned());
            }
        }
    }
    let from_headers = message.header_values(mail_parser::HeaderName::From).count();
    let from_mailboxes: usize = message
        .header_values(mail_parser::HeaderName::From)
        .map(|v| v.as_address().map_or(0, |a| a.iter().count()))
        .sum();
    let mut anomalies = Vec::new();
    if from_headers > 1 || from_mailboxes > 1 {
        anomalies.push(ANOMALY_AMBIGUOUS_SENDER.to_owned());
    }
    let return_path_address = message
        .header_raw("Return-Path")
        .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned());
    // The first From header's first mailbox: what a reader sees first.
    let from = message
        .header_values(mail_parser::HeaderName::From)
        .next()
        .and_then(|v| v.as_address())
        .and_then(|a| a.first());
    let from_address = from.and_then(|a| a.address()).map(|a| a.trim().to_owned()).filter(|a| usable_address(a));
    let from_name = from.and_then(|a| a.name()).map(str::to_owned).filter(|n| !n.trim().is_empty());

    // Bounded, and deduplicated in linear time: a hostile References header can carry
    // millions of IDs.
    let mut thread_ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for header in [message.in_reply_to(), message.references()] {
        let ids: Vec<&str> = if let Some(list) = header.as_text_list() {
            list.iter().rev().map(|s| s.as_ref()).collect()
        } else {
            header.as_text().into_iter().collect()
        };
        for id in ids {
            if thread_ids.len() >= MAX_THREAD_IDS {
                break;
            }
            if seen.insert(id) {
                thread_ids.push(id.to_owned());
            }
        }
    }

    let mut recipients: Vec<String> = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        for addr in list.iter().take(MAX_THREAD_IDS) {
            if let Some(a) = addr.address() {
                recipients.push(a.trim().to_owned());
            }
        }
    }
    for name in ["Delivered-To", "X-Original-To"] {
        if let Some(value) = message.header_raw(name) {
            recipients.push(value.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
        }
    }

    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .or_else(|| message.body_html(0).map(|h| h.into_owned()))
        .unwrap_or_default();

    let attachments: Vec<MailAttachment> = message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let media_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            MailAttachment {
                filename: part.attachment_name().map(str::to_owned).unwrap_or_else(|| format!("attachment-{}", i + 1)),
                media_type,
                data: part.contents().to_vec(),
            }
        })
        .collect();
    // Broken MIME: a part that did not decode, or a multipart whose boundary never occurs.
    let declared_multipart = message.content_type().is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"));
    let found_multipart = message.parts.iter().any(|p| matches!(p.body, mail_parser::PartType::Multipart(_)));
    let malformed = message.parts.iter().any(|p| p.is_encoding_problem) || (declared_multipart && !found_multipart);
    if malformed {
        anomalies.push(ANOMALY_MALFORMED_MIME.to_owned());
    }
    // A broken message's text must not hide as a file: without a readable text part, the
    // unnamed parts (recovered as far as they decode) are the body; the parts stay
    // attachments too.
    let text = if malformed && text.trim().is_empty() {
        let recovered: Vec<String> = message
            .attachments()
            .filter(|part| part.attachment_name().is_none())
            .map(|part| recover_text(part, message.raw_message.as_ref()))
            .filter(|t| !t.trim().is_empty())
            .collect();
        if recovered.is_empty() { body_after_headers(raw) } else { recovered.join("\n\n") }
    } else {
        text
    };
    // Whatever the parser made of it, a message that yields no readable text and no files
    // is shown as its raw text: nothing a reporter sent may be invisible to the team.
    let (text, parsed) = if text.trim().is_empty() && attachments.is_empty() {
        (String::from_utf8_lossy(raw).into_owned(), message.from().is_some())
    } else {
        (text, true)
    };
    let protected_headers = message
        .content_type()
        .and_then(|ct| ct.attribute("protected-headers"))
        .is_some_and(|v| v.trim_matches('"').eq_ignore_ascii_case("v1"));

    let header_text = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default();
    let auto_submitted = header_text("Auto-Submitted");
    let precedence = header_text("Precedence");
    let return_path = header_text("Return-Path");
    let multipart_encrypted = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("encrypted"))
    });
    let auto_generated = (!auto_submitted.is_empty() && auto_submitted != "no")
        || matches!(precedence.as_str(), "bulk" | "junk" | "list" | "auto_reply")
        || return_path == "<>"
        || message.header_raw("List-Id").is_some()
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some();

    InboundMail {
        from_address,
        from_name,
        subject: message.subject().unwrap_or_default().to_owned(),
        message_id: message.message_id().map(str::to_owned),
        thread_ids,
        recipients,
        text,
        attachments,
        auto_generated,
        parsed,
        pgp: None,
        multipart_encrypted,
        from_addresses,
        return_path: return_path_address,
        protected_headers,
        anomalies,
    }
}

fn usable_address(a: &str) -> bool {
    a.contains('@') && !a.contains(char::is_whitespace) && a.len() <= 320
}

/// The text of a part that the parser could not decode or file as text: base64 decoded
/// leniently (what is not base64 is skipped), anything else as it came.
fn recover_text(part: &mail_parser::MessagePart<'_>, raw: &[u8]) -> String {
    let base64 = part.content_transfer_encoding().is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    let source: &[u8] = raw.get(part.offset_body as usize..part.offset_end as usize).unwrap_or(part.contents());
    if part.is_encoding_problem && base64 {
        let decoded = lenient_base64(source);
        if !decoded.is_empty() {
            return String::from_utf8_lossy(&decoded).into_owned();
        }
    }
    String::from_utf8_lossy(part.contents()).into_owned()
}

/// Decodes base64, skipping every byte outside the alphabet and stopping at padding.
fn lenient_base64(data: &[u8]) -> Vec<u8> {
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        if b == b'=' {
            break;
        }
        let Some(v) = value(b) else { continue };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The body of a message: everything after the first empty line.
fn body_after_headers(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    match text.find("\r\n\r\n").map(|i| i + 4).or_else(|| text.find("\n\n").map(|i| i + 2)) {
        Some(start) => text[start..].to_owned(),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_yields_sender_subject_text_and_ids() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nTo: security@example.org\r\nSubject: =?utf-8?b?SGVhcCBvdmVyZmxvdyDinJM=?=\r\nMessage-ID: <abc@example.org>\r\nIn-Reply-To: <p2@x>\r\nReferences: <p1@x> <p2@x>\r\n\r\nThe parser overflows.\r\n";
        let mail = parse(raw);
        assert!(mail.parsed);
        assert_eq!(mail.from_address.as_deref(), Some("jorg@example.org"));
        assert_eq!(mail.from_name.as_deref(), Some("Jörg"));
        assert_eq!(mail.subject, "Heap overflow ✓");
        assert_eq!(mail.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(mail.thread_ids, vec!["p2@x".to_owned(), "p1@x".to_owned()]);
        assert_eq!(mail.recipients, vec!["security@example.org".to_owned()]);
        assert_eq!(mail.text.trim(), "The parser overflows.");
        assert!(!mail.auto_generated);
    }

    #[test]
    fn attachments_and_html_only_bodies() {
        let raw = b"From: a@example.org\r\nSubject: poc\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html\r\n\r\n<p>See <b>attached</b></p><script>alert(1)</script>\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"poc.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";
        let mail = parse(raw);
        assert!(mail.text.contains("See"), "{}", mail.text);
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].filename, "poc.bin");
        assert_eq!(mail.attachments[0].data, vec![0, 1, 2, 3]);
        assert_eq!(mail.attachments[0].media_type, "application/octet-stream");
    }

    #[test]
    fn every_inline_pgp_block_is_decrypted() {
        let key = openpgp::InstanceKey::generate("Security <security@example.org>").unwrap();
        let public = key.public_armored().unwrap();
        let first = openpgp::encrypt_to(&public, b"first secret").unwrap();
        let second = openpgp::encrypt_to(&public, b"second secret").unwrap();
        let raw = format!("From: a@x.test\r\nSubject: two\r\n\r\nNew text:\r\n{first}\r\n> quoted:\r\n{second}\r\n");
        let mail = parse_with_key(raw.as_bytes(), Some(&key));
        assert!(mail.text.contains("first secret") && mail.text.contains("second secret"), "{}", mail.text);
        assert!(!mail.text.contains("BEGIN PGP MESSAGE"));
        assert_eq!(mail.pgp, Some(PgpStatus::Decrypted { mime: false, signed: false, verified: None }));
    }

    #[test]
    fn a_multipart_without_its_boundary_shows_its_text_and_is_flagged() {
        // Declared multipart, boundary parameter missing.
        let raw = b"From: a@x.test\r\nSubject: poc\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nThe PoC: <script>alert(1)</script>\r\nsecond line\r\n";
        let mail = parse(raw);
        assert!(mail.text.contains("The PoC: <script>alert(1)</script>"), "{mail:?}");
        assert!(mail.text.contains("second line"));
        assert_eq!(mail.anomalies, vec![ANOMALY_MALFORMED_MIME.to_owned()]);
        // Declared boundary that never occurs.
        let raw = b"From: a@x.test\r\nSubject: poc\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--ABC\r\nContent-Type: text/plain\r\n\r\nHeap overflow in parse_header\r\n--ABC--\r\n";
        let mail = parse(raw);
        assert!(mail.text.contains("Heap overflow in parse_header"), "{mail:?}");
        assert!(mail.anomalies.contains(&ANOMALY_MALFORMED_MIME.to_owned()));
    }

    #[test]
    fn bad_base64_text_is_decoded_as_far_as_it_goes_and_flagged() {
        // "The token is never rotated.\n" in base64, with a stray character in the middle.
        let raw = b"From: a@x.test\r\nSubject: b64\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nVGhlIHRva2VuIGlz!IG5ldmVyIHJvdGF0ZWQuCg==\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=poc.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";
        let mail = parse(raw);
        assert!(mail.text.contains("The token is never rotated."), "{mail:?}");
        assert!(mail.anomalies.contains(&ANOMALY_MALFORMED_MIME.to_owned()), "{:?}", mail.anomalies);
        assert!(mail.attachments.iter().any(|a| a.filename == "poc.bin"), "the file is still there");
        // Well-formed mail carries no flag.
        assert!(parse(b"From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n").anomalies.is_empty());
    }

    #[test]
    fn two_from_headers_are_all_seen_and_flagged() {
        let raw = b"From: reporter@example.net\r\nFrom: victim@third-party.test\r\nSubject: s\r\n\r\nbody\r\n";
        let mail = parse(raw);
        assert_eq!(mail.from_addresses, vec!["reporter@example.net".to_owned(), "victim@third-party.test".to_owned()]);
        assert_eq!(mail.from_address.as_deref(), Some("reporter@example.net"), "the first, not silently the last");
        assert_eq!(mail.anomalies, vec![ANOMALY_AMBIGUOUS_SENDER.to_owned()]);
        let list = parse(b"From: a@x.test, b@y.test\r\nReturn-Path: <a@x.test>\r\nSubject: s\r\n\r\nbody\r\n");
        assert_eq!(list.anomalies, vec![ANOMALY_AMBIGUOUS_SENDER.to_owned()]);
        assert_eq!(list.return_path.as_deref(), Some("a@x.test"));
        assert!(parse(b"From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n").anomalies.is_empty());
    }

    #[test]
    fn huge_reference_lists_are_bounded() {
        let refs: String = (0..200_000).map(|i| format!("<r{i}@x> ")).collect();
        let raw = format!("From: a@x.test\r\nReferences: {refs}<r7@x>\r\nSubject: s\r\n\r\nbody\r\n");
        let mail = parse(raw.as_bytes());
        assert_eq!(mail.thread_ids.len(), MAX_THREAD_IDS);
        assert_eq!(mail.thread_ids[0], "r7@x", "nearest first");
    }

    #[test]
    fn auto_replies_are_recognised() {
        for header in
            ["Auto-Submitted: auto-replied", "Precedence: bulk", "Return-Path: <>", "List-Id: <x.example.org>"]
        {
            let raw = format!("From: a@example.org\r\n{header}\r\nSubject: away\r\n\r\nI am away.\r\n");
            assert!(parse(raw.as_bytes()).auto_generated, "{header}");
        }
        let raw = b"From: a@example.org\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nx\r\n";
        assert!(!parse(raw).auto_generated);
    }

    #[test]
    fn garbage_is_never_lost() {
        for raw in [&b"\xff\xfe not a mail at all"[..], b"\xff\xfe\x00 not a mail at all", b"Subject: x\r\n\r\n"] {
            let mail = parse(raw);
            let expected = String::from_utf8_lossy(raw);
            assert!(mail.text.contains(expected.trim()), "{raw:?}: {:?}", mail.text);
            assert_eq!(mail.from_address, None);
        }
    }
}
