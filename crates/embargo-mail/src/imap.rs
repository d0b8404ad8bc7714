//! IMAP polling: take in the mail of an existing security mailbox.
//!
//! The poller logs in over TLS (implicit TLS, port 993 style), looks in the mailbox for
//! messages without the `$EmbargoIngested` keyword, hands each to the [`MailSink`], and sets
//! the keyword (and `\Seen`) only after the sink has committed the message. A crash between
//! the two means the message is offered again, and intake recognises the redelivery by its
//! Message-ID. Where the server offers IDLE, the poller waits for new mail with it instead
//! of sleeping; either way it looks again at least every poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::smtp::{BoxFuture, DeliveryError};

/// The keyword set on messages Embargo has committed.
pub const DONE_KEYWORD: &str = "$EmbargoIngested";
/// The keyword set on messages intake refused for good (too large, empty).
pub const REJECTED_KEYWORD: &str = "$EmbargoRejected";

/// Where polled messages go.
pub trait MailSink: Send + Sync + 'static {
    /// Stores one raw message durably.
    fn ingest(&self, raw: Vec<u8>) -> BoxFuture<'_, Result<(), DeliveryError>>;
}

/// Connection settings.
#[derive(Clone)]
pub struct ImapSettings {
    /// Server host name (also checked against its certificate).
    pub host: String,
    /// Port (993 for implicit TLS).
    pub port: u16,
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The mailbox to read (usually `INBOX`).
    pub mailbox: String,
    /// Extra trusted CA certificates (PEM), for servers with a private CA.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// How often to look when IDLE is not available, and the longest IDLE wait.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

/// IMAP failures (connection, TLS, login, protocol).
#[derive(Debug, thiserror::Error)]
#[error("IMAP {0}")]
pub struct ImapError(String);

fn err(context: &str) -> impl Fn(String) -> ImapError + '_ {
    move |e| ImapError(format!("{context}: {e}"))
}

type Session = async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>>;

async fn connect(settings: &ImapSettings) -> Result<Session, ImapError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &settings.ca_certificate_pem {
        use rustls_pki_types::pem::PemObject;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| err("CA certificate")(e.to_string()))?;
            roots.add(cert).map_err(|e| err("CA certificate")(e.to_string()))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS")(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp =
        tokio::time::timeout(Duration::from_secs(30), TcpStream::connect((settings.host.as_str(), settings.port)))
            .await
            .map_err(|_| ImapError("connect: timed out".into()))?
            .map_err(|e| err("connect")(e.to_string()))?;
    let name =
        rustls_pki_types::ServerName::try_from(settings.host.clone()).map_err(|e| err("host name")(e.to_string()))?;
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| err("TLS")(e.to_string()))?;
    let mut client = async_imap::Client::new(tls);
    client
        .read_response()
        .await
        .map_err(|e| err("greeting")(e.to_string()))?
        .ok_or_else(|| ImapError("greeting: connection closed".into()))?;
    client.login(&settings.username, &settings.password).await.map_err(|(e, _)| err("login")(e.to_string()))
}

/// The longest one IMAP step (connect, login, a command) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

async fn step<T, E: std::fmt::Display>(
    context: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| ImapError(format!("{context}: {e}"))),
        Err(_) => Err(ImapError(format!("{context}: timed out"))),
    }
}

/// Connects, takes in every waiting message once, and returns the session (for IDLE) and
/// how many messages were committed. A message that cannot be fetched or is refused for
/// good is skipped (and flagged rejected where possible); a temporary intake failure ends
/// the round, to be retried after a pause.
async fn poll(settings: &ImapSettings, sink: &dyn MailSink) -> Result<(Session, usize), ImapError> {
    let mut session = tokio::time::timeout(STEP_TIMEOUT, connect(settings))
        .await
        .map_err(|_| ImapError("connect: timed out".into()))??;
    let mailbox = step("select", session.select(&settings.mailbox)).await?;
    // Without keywords the poller cannot remember what it took in.
    if !mailbox.permanent_flags.iter().any(|f| matches!(f, async_imap::types::Flag::MayCreate)) {
        return Err(ImapError(format!(
            "mailbox {} does not keep custom keywords ($EmbargoIngested)",
            settings.mailbox
        )));
    }
    let query = format!("NOT KEYWORD {DONE_KEYWORD} NOT KEYWORD {REJECTED_KEYWORD} NOT DELETED");
    let mut uids: Vec<u32> = step("search", session.uid_search(&query)).await?.into_iter().collect();
    uids.sort_unstable();
    let mut committed = 0;
    for uid in uids {
        let fetched = step("fetch", async {
            let mut fetches = session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await?;
            let mut raw = None;
            while let Some(fetch) = fetches.next().await {
                if let Some(body) = fetch?.body() {
                    raw = Some(body.to_vec());
                }
            }
            Ok::<_, async_imap::error::Error>(raw)
        })
        .await;
        let keyword = match fetched {
            Ok(Some(raw)) => match sink.ingest(raw).await {
                Ok(()) => {
                    committed += 1;
                    DONE_KEYWORD
                }
                Err(DeliveryError::Permanent(reason)) => {
                    tracing::warn!(uid, reason = %reason, "IMAP message refused by intake");
                    REJECTED_KEYWORD
                }
                Err(DeliveryError::Temporary(reason)) => {
                    return Err(ImapError(format!("intake unavailable, will retry: {reason}")));
                }
            },
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(uid, error = %error, "IMAP message cannot be fetched; skipped");
                REJECTED_KEYWORD
            }
        };
        // Flagged only now, after the commit.
        let flags = format!("+FLAGS ({keyword} \\Seen)");
        step("store", async {
            let updates = session.uid_store(uid.to_string(), &flags).await?;
            let _: Vec<_> = updates.collect().await;
            Ok::<_, async_imap::error::Error>(())
        })
        .await?;
    }
    Ok((session, committed))
}

/// Polls until `stop` turns true, with IDLE where the server offers it.
pub async fn run(settings: ImapSettings, sink: Arc<dyn MailSink>, mut stop: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    while !*stop.borrow() {
        let round = tokio::select! {
            round = poll(&settings, sink.as_ref()) => round,
            _ = stop.changed() => break,
        };
        match round {
            Ok((mut session, committed)) => {
                failures = 0;
                if committed > 0 {
                    tracing::info!(committed, "IMAP messages taken in");
                }
                let idle = step("capabilities", session.capabilities()).await.is_ok_and(|c| c.has_str("IDLE"));
                if idle {
                    let mut handle = session.idle();
                    if step("idle", handle.init()).await.is_ok() {
                        {
                            let (wait, interrupt) = handle.wait_with_timeout(settings.poll_interval);
                            // Keepalives restart the library's timeout; bound the whole wait.
                            tokio::select! {
                                _ = tokio::time::timeout(settings.poll_interval, wait) => {}
                                _ = stop.changed() => drop(interrupt),
                            }
                        }
                        if let Ok(mut session) = step("idle done", handle.done()).await {
                            let _ = step("logout", session.logout()).await;
                        }
                    }
                    // After a failed IDLE start the session is dropped; the next round reconnects.
                } else {
                    let _ = step("logout", session.logout()).await;
                    tokio::select! {
                        _ = tokio::time::sleep(settings.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let backoff = settings.poll_interval.saturating_mul(failures.min(10));
                tracing::warn!(error = %error, retry_in_s = backoff.as_secs(), "IMAP poll failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
