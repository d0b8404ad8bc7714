//! Outbound mail: composing messages and handing them to a transport.
//!
//! Two transports: a configured SMTP relay (STARTTLS or implicit TLS, with credentials, via
//! lettre), or, in the embedded default, an outbox Maildir in the data directory that an
//! administrator can read or forward. Delivery is idempotent per key: the Maildir file is
//! named after the key and written once; the relay is only used by jobs that record the
//! delivery in the same transaction as their completion.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// A plain-text message to send.
#[derive(Debug, Clone)]
pub struct OutboundMail {
    /// `Name <address>` or an address.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Where replies go (the report's reply address).
    pub reply_to: String,
    /// Subject.
    pub subject: String,
    /// Text body.
    pub body: String,
    /// Our Message-ID, without angle brackets.
    pub message_id: String,
    /// The message this answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Marks automatic replies (`Auto-Submitted: auto-replied`, RFC 3834) so that other
    /// robots do not answer them.
    pub auto_reply: bool,
    /// The recipient's OpenPGP certificate (armored): when set, the body is sent encrypted
    /// as PGP/MIME (RFC 3156); only the envelope headers stay readable.
    pub encrypt_to: Option<String>,
}

/// Why a message could not be composed or sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// An address or header is unusable; retrying will not help.
    #[error("cannot compose the message: {0}")]
    Invalid(String),
    /// The transport failed; retry later.
    #[error("cannot send the message: {0}")]
    Transport(String),
}

/// Composes an RFC 5322 message without a signature: one `text/plain` part, valid MIME
/// (`MIME-Version: 1.0`, quoted-printable where needed). Embargo's jobs use
/// [`compose_signed`]; this serves tools and tests that have no instance key.
pub fn compose(mail: &OutboundMail) -> Result<Vec<u8>, SendError> {
    compose_with(mail, &[], None)
}

/// A file sent with a message (inside the encryption or the signature, like the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its file name (letters, digits, `.`, `-`, `_` are kept; anything else becomes `_`).
    pub filename: String,
    /// Its media type, such as `text/x-patch` or `text/calendar`.
    pub content_type: String,
    /// The bytes, sent base64-encoded.
    pub data: Vec<u8>,
}

/// Composes an RFC 5322 message signed with the instance key, so that the recipient can
/// tell it came from the team:
///
/// - with [`OutboundMail::encrypt_to`], PGP/MIME `multipart/encrypted` (RFC 3156), signed and
///   encrypted in one OpenPGP message (§6.2). The encrypted entity carries the real headers
///   (`Content-Type: text/plain; protected-headers="v1"` with Subject, From, To, Reply-To,
///   Date and Message-ID inside, RFC 9788), and the cleartext `Subject` is reduced to the
///   leading `[REFERENCE]` tag of the subject, or `...` without one: a report's title never
///   travels in the clear;
/// - otherwise `multipart/signed` (RFC 3156 §5) with a detached signature over the
///   quoted-printable text part, which carries the same protected headers.
pub fn compose_signed(mail: &OutboundMail, key: &crate::openpgp::InstanceKey) -> Result<Vec<u8>, SendError> {
    compose_with(mail, &[], Some(key))
}

/// [`compose_signed`] with files: the protected entity becomes `multipart/mixed` (the text,
/// then each file), carrying the same protected headers, so that the files are signed and,
/// to a known key, encrypted with the text.
pub fn compose_signed_with_files(
    mail: &OutboundMail,
    files: &[Attachment],
    key: &crate::openpgp::InstanceKey,
) -> Result<Vec<u8>, SendError> {
    compose_with(mail, files, Some(key))
}

/// The cleartext subject of an encrypted message: the leading `[...]` tag (the report's
/// reference) or `...`.
pub fn outer_subject(subject: &str) -> String {
    let trimmed = subject.trim_start();
    match trimmed.strip_prefix('[').and_then(|rest| rest.find(']')) {
        Some(end) if end <= 64 && !trimmed[..end + 2].contains(char::is_whitespace) => trimmed[..end + 2].to_owned(),
        _ => "...".to_owned(),
    }
}

fn compose_with(
    mail: &OutboundMail,
    files: &[Attachment],
    key: Option<&crate::openpgp::InstanceKey>,
) -> Result<Vec<u8>, SendError> {
    use lettre::message::Mailboxes;
    use lettre::message::header::{self, ContentTransferEncoding};
    let mailbox = |text: &str, what: &str| -> Result<Mailbox, SendError> {
        text.parse().map_err(|e| SendError::Invalid(format!("{what} {text:?}: {e}")))
    };
    let content_type = |text: &str| ContentType::parse(text).map_err(|e| SendError::Invalid(e.to_string()));
    let (from, to, reply_to) =
        (mailbox(&mail.from, "sender")?, mailbox(&mail.to, "recipient")?, mailbox(&mail.reply_to, "reply address")?);
    let now = std::time::SystemTime::now();
    let message_id = format!("<{}>", mail.message_id);
    let encrypted = key.is_some() && mail.encrypt_to.is_some();
    let subject = if encrypted { outer_subject(&mail.subject) } else { mail.subject.clone() };
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to.clone())
        .reply_to(reply_to.clone())
        .subject(subject)
        .message_id(Some(message_id.clone()))
        .date(now);
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>")).references(format!("<{parent}>"));
    }
    if mail.auto_reply {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-replied".to_owned()));
    }
    let Some(key) = key else {
        if !files.is_empty() {
            return Err(SendError::Invalid("files are sent only in signed mail".into()));
        }
        // Unsigned: still valid MIME (the plain body is quoted-printable when it is not ASCII).
        return match &mail.encrypt_to {
            None => builder.singlepart(SinglePart::plain(mail.body.clone())),
            Some(certificate) => {
                let entity = SinglePart::plain(mail.body.clone()).formatted();
                let armored = crate::openpgp::encrypt_to(certificate, &entity)
                    .map_err(|e| SendError::Invalid(format!("OpenPGP: {e}")))?;
                builder.multipart(encrypted_body(armored)?)
            }
        }
        .map(|m| m.formatted())
        .map_err(|e| SendError::Invalid(e.to_string()));
    };
    // The protected part: the text, quoted-printable (7-bit, so that no relay re-encodes it
    // and trailing spaces such as the signature separator's survive), with the real headers.
    let text = SinglePart::builder()
        .header(content_type(if files.is_empty() {
            "text/plain; charset=utf-8; protected-headers=\"v1\""
        } else {
            "text/plain; charset=utf-8"
        })?)
        .header(ContentTransferEncoding::QuotedPrintable);
    // The real headers go on the protected entity: the text, or the mixed part around it.
    let protected = if files.is_empty() {
        Protected::Text(
            text.header(header::From::from(Mailboxes::from(from)))
                .header(header::To::from(Mailboxes::from(to)))
                .header(header::ReplyTo::from(Mailboxes::from(reply_to)))
                .header(header::Subject::from(mail.subject.clone()))
                .header(header::MessageId::from(message_id))
                .header(header::Date::from(now))
                .body(mail.body.clone()),
        )
    } else {
        let mut mixed = MultiPart::mixed()
            .header(header::From::from(Mailboxes::from(from)))
            .header(header::To::from(Mailboxes::from(to)))
            .header(header::ReplyTo::from(Mailboxes::from(reply_to)))
            .header(header::Subject::from(mail.subject.clone()))
            .header(header::MessageId::from(message_id))
            .header(header::Date::from(now))
            .singlepart(text.body(mail.body.clone()));
        for file in files {
            let name: String = file
                .filename
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
                .collect();
            mixed = mixed.singlepart(
                SinglePart::builder()
                    .header(content_type(&format!("{}; name=\"{name}\"", file.content_type))?)
                    .header(lettre::message::header::ContentDisposition::attachment(&name))
                    .header(ContentTransferEncoding::Base64)
                    .body(file.data.clone()),
            );
        }
        Protected::Mixed(mixed)
    };
    let message = match &mail.encrypt_to {
        Some(certificate) => {
            let armored = crate::openpgp::sign_and_encrypt_to(certificate, &protected.formatted(), key)
                .map_err(|e| SendError::Invalid(format!("OpenPGP: {e}")))?;
            builder.multipart(encrypted_body(armored)?)
        }
        None => {
            // The signed content is the part as it appears between the boundaries: its
            // serialisation without the CRLF that belongs to the next delimiter.
            let formatted = protected.formatted();
            let signed = formatted.strip_suffix(b"\r\n").unwrap_or(&formatted);
            let signature =
                key.sign_detached(signed).map_err(|e| SendError::Invalid(format!("OpenPGP signature: {e}")))?;
            let outer = MultiPart::signed("application/pgp-signature".to_owned(), "pgp-sha512".to_owned());
            let outer = match protected {
                Protected::Text(part) => outer.singlepart(part),
                Protected::Mixed(part) => outer.multipart(part),
            };
            builder.multipart(
                outer.singlepart(
                    SinglePart::builder()
                        .header(content_type("application/pgp-signature; name=\"signature.asc\"")?)
                        .header(ContentTransferEncoding::SevenBit)
                        .body(signature.replace("\r\n", "\n").replace('\n', "\r\n")),
                ),
            )
        }
    }
    .map_err(|e| SendError::Invalid(e.to_string()))?;
    Ok(message.formatted())
}

/// Composes a forward of a received message (mail to `postmaster@`, for the admins): a short
/// note and the message as it came, attached as `message/rfc822` (7-bit messages) or as an
/// `original.eml` file (anything else, base64). Valid MIME; the original is untouched.
pub fn compose_forward(
    from: &str,
    to: &str,
    subject: &str,
    note: &str,
    message_id: &str,
    original: &[u8],
) -> Result<Vec<u8>, SendError> {
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;
    let mailbox = |text: &str, what: &str| -> Result<Mailbox, SendError> {
        text.parse().map_err(|e| SendError::Invalid(format!("{what} {text:?}: {e}")))
    };
    let content_type = |text: &str| ContentType::parse(text).map_err(|e| SendError::Invalid(e.to_string()));
    let seven_bit = original.iter().all(|b| b.is_ascii() && *b != 0)
        && original.split(|b| *b == b'\n').all(|line| line.len() <= 998);
    let attachment = if seven_bit {
        let text: String = String::from_utf8_lossy(original).replace("\r\n", "\n").replace('\n', "\r\n");
        let body = Body::new_with_encoding(text, ContentTransferEncoding::SevenBit)
            .map_err(|_| SendError::Invalid("the forwarded message is not 7-bit".into()))?;
        SinglePart::builder()
            .header(content_type("message/rfc822")?)
            .header(lettre::message::header::ContentDisposition::inline())
            .body(body)
    } else {
        SinglePart::builder()
            .header(content_type("application/octet-stream; name=\"original.eml\"")?)
            .header(lettre::message::header::ContentDisposition::attachment("original.eml"))
            .header(ContentTransferEncoding::Base64)
            .body(original.to_vec())
    };
    let message = Message::builder()
        .from(mailbox(from, "sender")?)
        .to(mailbox(to, "recipient")?)
        .subject(subject.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
        .message_id(Some(format!("<{message_id}>")))
        .date_now()
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".to_owned()))
        .multipart(MultiPart::mixed().singlepart(SinglePart::plain(note.to_owned())).singlepart(attachment))
        .map_err(|e| SendError::Invalid(e.to_string()))?;
    Ok(message.formatted())
}

/// The entity that carries the real headers: the text alone, or the text with files.
enum Protected {
    Text(SinglePart),
    Mixed(MultiPart),
}

impl Protected {
    fn formatted(&self) -> Vec<u8> {
        match self {
            Protected::Text(part) => part.formatted(),
            Protected::Mixed(part) => part.formatted(),
        }
    }
}

/// The `multipart/encrypted` body of RFC 3156 §4 around an armored OpenPGP message.
fn encrypted_body(armored: String) -> Result<MultiPart, SendError> {
    let content_type = |text: &str| ContentType::parse(text).map_err(|e| SendError::Invalid(e.to_string()));
    Ok(MultiPart::encrypted("application/pgp-encrypted".to_owned())
        .singlepart(
            SinglePart::builder().header(content_type("application/pgp-encrypted")?).body("Version: 1\r\n".to_owned()),
        )
        .singlepart(
            SinglePart::builder()
                .header(content_type("application/octet-stream; name=\"encrypted.asc\"")?)
                .body(armored),
        ))
}

/// Where outgoing mail goes.
#[derive(Clone)]
pub enum Transport {
    /// Files in a Maildir (`tmp`, `new`, `cur`).
    Outbox(Outbox),
    /// An SMTP relay.
    Relay(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Outbox(outbox) => f.debug_tuple("Outbox").field(&outbox.dir).finish(),
            Transport::Relay(_) => f.write_str("Relay"),
        }
    }
}

impl Transport {
    /// A relay from a URL such as `smtp://user:password@host:587?tls=required` or
    /// `smtps://host`, or the outbox when `url` is empty.
    pub fn new(url: &str, outbox_dir: &Path) -> Result<Self, SendError> {
        if url.trim().is_empty() {
            return Ok(Transport::Outbox(Outbox::new(outbox_dir)));
        }
        let relay = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SendError::Invalid(format!("relay URL: {e}")))?
            .build();
        Ok(Transport::Relay(relay))
    }

    /// Sends `raw` to `to` with envelope sender `from`; `key` makes the delivery idempotent
    /// where the transport allows it. Returns a description of where it went.
    pub async fn send(&self, key: &str, from: &str, to: &str, raw: &[u8]) -> Result<String, SendError> {
        match self {
            Transport::Outbox(outbox) => {
                let path = outbox.deliver(key, raw).map_err(|e| SendError::Transport(e.to_string()))?;
                Ok(format!("outbox {}", path.display()))
            }
            Transport::Relay(relay) => {
                let address = |a: &str| a.parse().map_err(|e| SendError::Invalid(format!("{a:?}: {e}")));
                let envelope = lettre::address::Envelope::new(Some(address(from)?), vec![address(to)?])
                    .map_err(|e| SendError::Invalid(e.to_string()))?;
                let response = relay.send_raw(&envelope, raw).await.map_err(|e| {
                    if e.is_permanent() {
                        SendError::Invalid(e.to_string())
                    } else {
                        SendError::Transport(e.to_string())
                    }
                })?;
                Ok(format!("relay {}", response.code()))
            }
        }
    }
}

/// A Maildir of sent mail.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// One message in the outbox, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The file.
    pub path: PathBuf,
    /// Its `Date` header.
    pub date: String,
    /// Its `To` header.
    pub to: String,
    /// Its `Subject` header.
    pub subject: String,
}

impl Outbox {
    /// The outbox at `dir` (created on first delivery).
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn file_name(key: &str) -> String {
        // Readable part plus a hash of the whole key, so that keys differing only in
        // replaced characters never share a file.
        let safe: String =
            key.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{safe}.{hash:016x}.embargo")
    }

    /// Writes a message durably (tmp, fsync, rename into `new`). Writing the same key twice
    /// keeps the first.
    pub fn deliver(&self, key: &str, raw: &[u8]) -> io::Result<PathBuf> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(self.dir.join(sub))?;
        }
        let name = Self::file_name(key);
        let target = self.dir.join("new").join(&name);
        let delivered_before = fs::read_dir(self.dir.join("cur"))?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().split(':').next() == Some(name.as_str()));
        if target.exists() || delivered_before {
            return Ok(target);
        }
        let tmp = self.dir.join("tmp").join(format!("{name}.{}.{:016x}", std::process::id(), rand::random::<u64>()));
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(raw)?;
            file.sync_all()?;
        }
        // A hard link never replaces an existing file: of two concurrent writers, one wins.
        let linked = fs::hard_link(&tmp, &target);
        fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => fs::File::open(self.dir.join("new"))?.sync_all()?,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        Ok(target)
    }

    /// The messages in `new` and `cur`, oldest first.
    pub fn list(&self) -> io::Result<Vec<OutboxEntry>> {
        let mut entries = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(dir) = fs::read_dir(self.dir.join(sub)) else { continue };
            for entry in dir.flatten() {
                let path = entry.path();
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                let raw = fs::read(&path)?;
                let parsed = mail_parser::MessageParser::default().parse(&raw);
                let header = |name: &str| {
                    parsed.as_ref().and_then(|m| m.header_raw(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
                };
                let subject = parsed.as_ref().and_then(|m| m.subject()).unwrap_or_default().to_owned();
                entries.push((modified, OutboxEntry { date: header("Date"), to: header("To"), subject, path }));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        Ok(entries.into_iter().map(|(_, e)| e).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutboundMail {
        OutboundMail {
            from: "Example Security <security@example.org>".into(),
            to: "Jörg <jorg@example.net>".into(),
            reply_to: "security+abc123@example.org".into(),
            subject: "[SEC-2026-1] We received your report".into(),
            body: "Thank you.\nLine two — ünïcode.\n.leading dot\n".into(),
            message_id: "embargo.ack.1@example.org".into(),
            in_reply_to: Some("orig@example.net".into()),
            auto_reply: true,
            encrypt_to: None,
        }
    }

    #[test]
    fn composed_mail_parses_back_with_its_headers() {
        let raw = compose(&sample()).unwrap();
        let parsed = crate::parse(&raw);
        assert_eq!(parsed.subject, "[SEC-2026-1] We received your report");
        assert_eq!(parsed.message_id.as_deref(), Some("embargo.ack.1@example.org"));
        assert_eq!(parsed.thread_ids, vec!["orig@example.net".to_owned()]);
        assert!(parsed.auto_generated, "marked Auto-Submitted");
        assert!(parsed.text.contains("ünïcode"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Reply-To: security+abc123@example.org"), "{text}");
    }

    /// The bytes of the first part of a two-part `multipart/signed` message, as signed, and
    /// the text of the second.
    fn signed_parts(raw: &[u8]) -> (Vec<u8>, String) {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let start = text.find("boundary=\"").unwrap() + "boundary=\"".len();
        let boundary = &text[start..start + text[start..].find('"').unwrap()];
        let delimiter = format!("\r\n--{boundary}\r\n");
        let first = text.find(&delimiter).unwrap() + delimiter.len();
        let second = first + text[first..].find(&delimiter).unwrap();
        let signature_part = &text[second + delimiter.len()..];
        let signature = &signature_part[signature_part.find("-----BEGIN").unwrap()..];
        (text.as_bytes()[first..second].to_vec(), signature.to_owned())
    }

    #[test]
    fn every_message_declares_mime_version() {
        for raw in [compose(&sample()).unwrap(), {
            let key = crate::openpgp::InstanceKey::generate("Security <security@example.org>").unwrap();
            compose_signed(&sample(), &key).unwrap()
        }] {
            let text = String::from_utf8_lossy(&raw);
            let headers = &text[..text.find("\r\n\r\n").unwrap()];
            assert!(headers.contains("\r\nMIME-Version: 1.0\r\n"), "{headers}");
        }
    }

    #[test]
    fn plain_mail_is_signed_pgp_mime_and_the_signature_verifies() {
        use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
        let key = crate::openpgp::InstanceKey::generate("Security <security@example.org>").unwrap();
        let raw = compose_signed(&sample(), &key).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/signed") && text.contains("application/pgp-signature"), "{text}");
        assert!(text.contains("micalg=\"pgp-sha512\"") || text.contains("micalg=pgp-sha512"), "{text}");
        let (signed, signature) = signed_parts(&raw);
        let signed_text = String::from_utf8_lossy(&signed);
        assert!(signed_text.contains("protected-headers=\"v1\""), "{signed_text}");
        assert!(signed_text.contains("Subject: [SEC-2026-1] We received your report"), "{signed_text}");
        let (cert, _) = SignedPublicKey::from_string(&key.public_armored().unwrap()).unwrap();
        let (sig, _) = DetachedSignature::from_string(&signature).unwrap();
        sig.verify(&cert, &signed).expect("the detached signature verifies over the first part");
        let mut tampered = signed.clone();
        let at = tampered.len() - 3;
        tampered[at] ^= 1;
        assert!(sig.verify(&cert, &tampered).is_err(), "a changed byte breaks it");
        // A reader that knows nothing of PGP still gets the text and the subject.
        let parsed = crate::parse(&raw);
        assert_eq!(parsed.subject, "[SEC-2026-1] We received your report");
        assert!(parsed.text.contains("ünïcode"), "{}", parsed.text);
    }

    #[test]
    fn encrypted_mail_is_signed_and_keeps_the_subject_inside() {
        let instance = crate::openpgp::InstanceKey::generate("Security <security@example.org>").unwrap();
        let reporter = crate::openpgp::InstanceKey::generate("Reporter <jorg@example.net>").unwrap();
        let mut mail = sample();
        mail.subject = "[SEC-2026-1] Re: SQL injection in /login".into();
        mail.encrypt_to = Some(reporter.public_armored().unwrap());
        let raw = compose_signed(&mail, &instance).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("SQL injection") && !text.contains("Thank you."), "{text}");
        assert_eq!(crate::parse(&raw).subject, "[SEC-2026-1]", "only the reference in the clear");
        let parsed = crate::parse_with_keys(&raw, Some(&reporter), Some(&instance.public_armored().unwrap()));
        assert_eq!(parsed.pgp, Some(crate::PgpStatus::Decrypted { mime: true, signed: true, verified: Some(true) }));
        assert_eq!(parsed.subject, "[SEC-2026-1] Re: SQL injection in /login", "the protected subject");
        assert!(parsed.text.contains("Thank you."), "{}", parsed.text);
    }

    #[test]
    fn the_outer_subject_is_the_reference_or_dots() {
        assert_eq!(outer_subject("[SEC-2026-24] Re: XSS in the login form"), "[SEC-2026-24]");
        assert_eq!(outer_subject("Re: XSS"), "...");
        assert_eq!(outer_subject("[not a reference] XSS"), "...");
        assert_eq!(outer_subject(""), "...");
    }

    #[test]
    fn mail_to_a_known_key_is_pgp_mime_encrypted() {
        let key = crate::openpgp::InstanceKey::generate("Reporter <jorg@example.net>").unwrap();
        let mut mail = sample();
        mail.encrypt_to = Some(key.public_armored().unwrap());
        let raw = compose(&mail).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/encrypted") && text.contains("application/pgp-encrypted"), "{text}");
        assert!(!text.contains("Thank you."), "the body is not readable");
        let parsed = crate::parse_with_key(&raw, Some(&key));
        assert!(parsed.text.contains("Thank you."), "{}", parsed.text);
        assert_eq!(parsed.pgp, Some(crate::PgpStatus::Decrypted { mime: true, signed: false, verified: None }));
    }

    #[test]
    fn bad_addresses_are_refused() {
        let mut mail = sample();
        mail.to = "not an address".into();
        assert!(matches!(compose(&mail), Err(SendError::Invalid(_))));
    }

    #[test]
    fn the_outbox_is_a_maildir_written_once_per_key() {
        let dir = std::env::temp_dir().join(format!("embargo-outbox-{}-{}", std::process::id(), line!()));
        let outbox = Outbox::new(&dir);
        let raw = compose(&sample()).unwrap();
        let first = outbox.deliver("ack:1", &raw).unwrap();
        let again = outbox.deliver("ack:1", b"different").unwrap();
        assert_eq!(first, again);
        assert_eq!(fs::read(&first).unwrap(), raw);
        let listed = outbox.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].subject, "[SEC-2026-1] We received your report");
        assert!(listed[0].to.contains("jorg@example.net"));
        assert!(fs::read_dir(dir.join("tmp")).unwrap().next().is_none(), "no leftovers in tmp");
        fs::remove_dir_all(&dir).unwrap();
    }
}
