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

/// Composes an RFC 5322 message (UTF-8 text, quoted-printable where needed).
pub fn compose(mail: &OutboundMail) -> Result<Vec<u8>, SendError> {
    let mailbox = |text: &str, what: &str| -> Result<Mailbox, SendError> {
        text.parse().map_err(|e| SendError::Invalid(format!("{what} {text:?}: {e}")))
    };
    let mut builder = Message::builder()
        .from(mailbox(&mail.from, "sender")?)
        .to(mailbox(&mail.to, "recipient")?)
        .reply_to(mailbox(&mail.reply_to, "reply address")?)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .date_now();
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>")).references(format!("<{parent}>"));
    }
    if mail.auto_reply {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-replied".to_owned()));
    }
    let message = match &mail.encrypt_to {
        None => builder.header(ContentType::TEXT_PLAIN).body(mail.body.clone()),
        Some(certificate) => {
            let entity = SinglePart::plain(mail.body.clone()).formatted();
            let armored = crate::openpgp::encrypt_to(certificate, &entity)
                .map_err(|e| SendError::Invalid(format!("OpenPGP: {e}")))?;
            let content_type = |text: &str| ContentType::parse(text).map_err(|e| SendError::Invalid(e.to_string()));
            builder.multipart(
                MultiPart::encrypted("application/pgp-encrypted".to_owned())
                    .singlepart(
                        SinglePart::builder()
                            .header(content_type("application/pgp-encrypted")?)
                            .body("Version: 1\r\n".to_owned()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(content_type("application/octet-stream; name=\"encrypted.asc\"")?)
                            .body(armored),
                    ),
            )
        }
    }
    .map_err(|e| SendError::Invalid(e.to_string()))?;
    Ok(message.formatted())
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
