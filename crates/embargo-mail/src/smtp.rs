//! The built-in SMTP listener: Embargo as the MX (or relay target) for the security address.
//!
//! It speaks ESMTP (RFC 5321) with SIZE, 8BITMIME, PIPELINING, ENHANCEDSTATUSCODES and, when
//! a certificate is configured, STARTTLS. It accepts mail only for the addresses the
//! [`Delivery`] accepts, and answers `250` to a message only after [`Delivery::deliver`]
//! returned, which commits the message durably; any failure before that is answered with a
//! `4xx` code so that the sender keeps the message and retries.
//!
//! Everything the peer sends is hostile: command lines are bounded, the message size is
//! enforced while reading (the excess is discarded, never buffered), errors and idle time
//! end the session, connections are limited per address and in total, and messages are
//! rate-limited per address. End of data is recognised only as `<CRLF>.<CRLF>`, never as a
//! bare `<LF>.<LF>`, which closes the SMTP smuggling hole. Input buffered before STARTTLS
//! is discarded (CVE-2011-0411 class of command injection).
//!
//! Written here rather than taken from a crate: the maintained Rust SMTP server libraries
//! are either unmaintained (mailin, samotop) or part of a whole mail server (Stalwart), and
//! the protocol subset needed for intake is a few hundred lines (see ADR 6).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest command line accepted (RFC 5321 allows 512; extensions add a little).
const MAX_COMMAND_LINE: usize = 2048;
/// Protocol errors tolerated before the session is closed.
const MAX_ERRORS: u32 = 10;

/// Listener settings.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes (announced with SIZE).
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Simultaneous connections from one address.
    pub max_connections_per_ip: usize,
    /// Simultaneous connections in total.
    pub max_connections: usize,
    /// Messages accepted per address per minute.
    pub messages_per_minute_per_ip: u32,
    /// Idle time after which a session is closed.
    pub idle_timeout: Duration,
    /// TLS for STARTTLS, when a certificate is configured.
    pub tls: Option<TlsAcceptor>,
    /// The bytes of message data all connections together may hold in memory.
    pub memory: MemoryBudget,
    /// Which connecting addresses are load balancers that send a PROXY protocol header
    /// naming the client (see [`crate::proxy_protocol`]); `None`: no one's is believed.
    pub proxy_protocol_from: Option<Arc<dyn Fn(IpAddr) -> bool + Send + Sync>>,
}

/// How long a balancer may take to send its PROXY header (it sends it at once).
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Message data held in memory by all connections together, up to a limit: each connection's
/// DATA takes from it as it grows and gives back once its message was delivered (or
/// dropped). A message that would go over is drained and refused with a temporary `452`, so
/// that many large messages at once cannot exhaust memory while each stays within its own
/// `SIZE` limit.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    used: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    limit: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { used: std::sync::Arc::default(), limit }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }

    fn take(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Bytes taken from a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
struct Held {
    budget: MemoryBudget,
    bytes: usize,
}

impl Held {
    fn grow(&mut self, bytes: usize) -> bool {
        let taken = self.budget.take(bytes);
        if taken {
            self.bytes += bytes;
        }
        taken
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("starttls", &self.tls.is_some())
            .field("proxy_protocol", &self.proxy_protocol_from.is_some())
            .finish_non_exhaustive()
    }
}

/// One received message with its envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The connecting address.
    pub peer: SocketAddr,
    /// The name given in HELO/EHLO.
    pub helo: String,
    /// The reverse path (empty for bounces).
    pub mail_from: String,
    /// Accepted recipients.
    pub rcpt_to: Vec<String>,
    /// Whether the message came over TLS.
    pub tls: bool,
    /// The message, dot-unstuffed, with CRLF line ends as sent.
    pub data: Vec<u8>,
}

/// Why a delivery failed.
#[derive(Debug)]
pub enum DeliveryError {
    /// Not stored; the sender should retry (answered with 451).
    Temporary(String),
    /// Refused for good (answered with 554).
    Permanent(String),
}

/// A boxed future, for the object-safe [`Delivery`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where accepted mail goes.
pub trait Delivery: Send + Sync + 'static {
    /// Whether mail for `address` is accepted here (RCPT TO).
    fn accepts(&self, address: &str) -> bool;
    /// Stores a message durably; returns a short receipt for the `250` reply.
    fn deliver(&self, envelope: Envelope) -> BoxFuture<'_, Result<String, DeliveryError>>;
}

/// Runs the listener until `stop` turns true; sessions in progress are then closed at
/// their next command with `421`.
pub async fn serve(
    listener: TcpListener,
    settings: SmtpSettings,
    delivery: Arc<dyn Delivery>,
    stop: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let limits = Arc::new(Limits::default());
    let total = Arc::new(Semaphore::new(settings.max_connections));
    let mut stop_accept = stop.clone();
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stop_accept.wait_for(|s| *s).await; } => break,
        };
        let _ = socket.set_nodelay(true);
        let settings = settings.clone();
        let delivery = delivery.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        let permit = total.clone().try_acquire_owned();
        tokio::spawn(async move {
            let mut socket = socket;
            let Ok(_permit) = permit else {
                let _ = socket.write_all(b"421 4.3.2 Too many connections, try again later\r\n").await;
                return;
            };
            // Behind a trusted balancer, the client is the one its PROXY header names: the
            // limits, sender authentication and the postmaster's record see that address.
            let peer = match &settings.proxy_protocol_from {
                Some(trusted) if trusted(peer.ip()) => {
                    match tokio::time::timeout(PROXY_HEADER_TIMEOUT, crate::proxy_protocol::read_header(&mut socket))
                        .await
                    {
                        Ok(Ok(client)) => client.unwrap_or(peer),
                        Ok(Err(err)) => {
                            tracing::warn!(peer = %peer, error = %err, "smtp connection from a proxy closed: no valid PROXY header");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(peer = %peer, "smtp connection from a proxy closed: no PROXY header within 5 s");
                            return;
                        }
                    }
                }
                _ => peer,
            };
            let Some(_guard) = limits.enter(peer.ip(), settings.max_connections_per_ip) else {
                let _ =
                    socket.write_all(b"421 4.7.0 Too many connections from your address, try again later\r\n").await;
                return;
            };
            let session = Session::new(settings, delivery, limits.clone(), peer, stop);
            if let Err(err) = session.run(Stream::Plain(socket)).await {
                tracing::debug!(peer = %peer, error = %err, "smtp session ended with an error");
            }
        });
    }
}

/// Connection counts and message rates per address.
/// Runs one SMTP session with a peer that sends `input` (then closes its side) and returns
/// everything the server answered: the whole command parser and DATA reader as a TCP peer
/// sees them, without a socket. For the fuzz target only (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub async fn session_in_memory(settings: SmtpSettings, delivery: Arc<dyn Delivery>, input: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (_stop, stop) = watch::channel(false);
    let peer = SocketAddr::from(([192, 0, 2, 1], 40000));
    let session = Session::new(Arc::new(settings), delivery, Arc::default(), peer, stop);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let server = async {
        let _ = session.run(Stream::Memory(server)).await;
    };
    let writer = async {
        let _ = to_server.write_all(input).await;
        let _ = to_server.shutdown().await;
    };
    let reader = async {
        let mut answer = Vec::new();
        let _ = from_server.read_to_end(&mut answer).await;
        answer
    };
    let ((), (), answer) = tokio::join!(server, writer, reader);
    answer
}

#[derive(Debug, Default)]
struct Limits {
    state: Mutex<HashMap<IpAddr, PeerState>>,
}

#[derive(Debug, Default)]
struct PeerState {
    connections: usize,
    window_start: Option<Instant>,
    messages_in_window: u32,
}

struct ConnectionGuard {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut state = self.limits.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = state.get_mut(&self.ip) {
            peer.connections = peer.connections.saturating_sub(1);
            let stale = peer.window_start.is_none_or(|t| t.elapsed() > Duration::from_secs(60));
            if peer.connections == 0 && stale {
                state.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ConnectionGuard> {
        let ip = limit_key(ip);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.len() > 4096 {
            // Forget addresses that are neither connected nor inside their rate window.
            state.retain(|_, p| {
                p.connections > 0 || p.window_start.is_some_and(|t| t.elapsed() < Duration::from_secs(60))
            });
        }
        let peer = state.entry(ip).or_default();
        if peer.connections >= max {
            return None;
        }
        peer.connections += 1;
        Some(ConnectionGuard { limits: self.clone(), ip })
    }

    /// Counts one message from `ip`; false when it exceeds the per-minute rate.
    fn allow_message(&self, ip: IpAddr, per_minute: u32) -> bool {
        let ip = limit_key(ip);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let peer = state.entry(ip).or_default();
        let now = Instant::now();
        match peer.window_start {
            Some(start) if now.duration_since(start) < Duration::from_secs(60) => {}
            _ => {
                peer.window_start = Some(now);
                peer.messages_in_window = 0;
            }
        }
        if peer.messages_in_window >= per_minute {
            return false;
        }
        peer.messages_in_window += 1;
        true
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// An in-memory peer (the fuzz target, `fuzz/fuzz_targets/smtp.rs`).
    #[cfg(feature = "fuzzing")]
    Memory(tokio::io::DuplexStream),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// How long a write may take before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a session may last, and the most commands it may send.
const MAX_SESSION: Duration = Duration::from_secs(3600);
const MAX_COMMANDS: u32 = 10_000;

/// Writes and flushes, giving up on a peer that does not read.
async fn write_timeout(reader: &mut BufReader<Stream>, bytes: &[u8]) -> io::Result<()> {
    let write = async {
        reader.get_mut().write_all(bytes).await?;
        reader.get_mut().flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "peer does not read")))
}

/// The key connection and rate limits are counted under: the address, or its /64 for IPv6
/// (one IPv6 host usually controls a whole /64).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
        }
    }
}

/// What reading one line gave.
enum Line {
    /// A line, including its terminator.
    Text(Vec<u8>),
    /// The line was longer than allowed (it was consumed and dropped).
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Reads one line of at most `max` bytes without ever buffering more than that.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() && !too_long { Line::Eof } else { Line::Text(line) });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long {
            if line.len() + n > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(n);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Text(line) });
        }
    }
}

#[derive(Debug)]
enum DataOutcome {
    Complete(Vec<u8>),
    TooBig,
    /// All connections together hold as much as the memory budget allows.
    Busy,
    Eof,
}

/// Reads DATA until `<CRLF>.<CRLF>`, dot-unstuffing, keeping at most `max` bytes, giving up
/// when the client stays silent for `idle`.
///
/// The terminating dot counts only on a line of its own after a CRLF line ending: neither
/// `<LF>.<LF>` nor `<LF>.<CRLF>` ends the data (SMTP smuggling). Memory stays within `max`
/// plus one line: each line may only be as long as the budget left.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: Duration,
    held: &mut Held,
) -> io::Result<DataOutcome> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut busy = false;
    let mut after_crlf = true;
    loop {
        let budget = if too_big { 64 * 1024 } else { max - data.len() + 3 };
        let line = match tokio::time::timeout(idle, read_line(reader, budget)).await {
            Err(_) => return Ok(DataOutcome::Eof),
            Ok(line) => line?,
        };
        let line = match line {
            Line::Eof => return Ok(DataOutcome::Eof),
            Line::TooLong => {
                too_big = true;
                data = Vec::new();
                // The dropped line ended with a line feed; treat it as a proper line end.
                after_crlf = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == b".\r\n" && after_crlf {
            return Ok(if too_big {
                DataOutcome::TooBig
            } else if busy {
                DataOutcome::Busy
            } else {
                DataOutcome::Complete(data)
            });
        }
        if !line.ends_with(b"\n") {
            // The connection closed in the middle of a line.
            return Ok(DataOutcome::Eof);
        }
        // Dot-stuffing applies to proper CRLF lines only; bare-LF oddities are kept as sent.
        let proper = after_crlf && line.ends_with(b"\r\n");
        after_crlf = line.ends_with(b"\r\n");
        let content = if proper && line.starts_with(b".") { &line[1..] } else { &line[..] };
        if !too_big {
            if data.len() + content.len() > max {
                too_big = true;
                data = Vec::new();
            } else if !busy && !held.grow(content.len()) {
                // Over the budget shared by all connections: drain the rest, keep nothing.
                busy = true;
                data = Vec::new();
            } else if !busy {
                data.extend_from_slice(content);
            }
        }
    }
}

/// Extracts the address from `FROM:<a@b> PARAMS` / `TO:<a@b>`; returns (address, params).
fn parse_path(argument: &str, keyword: &str) -> Option<(String, String)> {
    let rest = argument.get(..keyword.len())?.eq_ignore_ascii_case(keyword).then(|| &argument[keyword.len()..])?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let address = rest[..end].trim();
    // Drop a source route (`@a,@b:user@host`), obsolete but legal.
    let address = address.rsplit_once(':').map_or(address, |(_, a)| a);
    if address.len() > 320 || address.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    Some((address.to_owned(), rest[end + 1..].trim().to_owned()))
}

struct Session {
    settings: Arc<SmtpSettings>,
    delivery: Arc<dyn Delivery>,
    limits: Arc<Limits>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    tls: bool,
    errors: u32,
    commands: u32,
    started: Instant,
}

enum Next {
    Continue,
    Close,
    StartTls,
}

impl Session {
    fn new(
        settings: Arc<SmtpSettings>,
        delivery: Arc<dyn Delivery>,
        limits: Arc<Limits>,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            settings,
            delivery,
            limits,
            peer,
            stop,
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            tls: false,
            errors: 0,
            commands: 0,
            started: Instant::now(),
        }
    }

    async fn run(mut self, stream: Stream) -> io::Result<()> {
        let mut reader = BufReader::new(stream);
        let greeting = format!("220 {} ESMTP Embargo\r\n", self.settings.hostname);
        write_timeout(&mut reader, greeting.as_bytes()).await?;
        loop {
            match self.commands(&mut reader).await? {
                Next::Close => {
                    let _ = reader.get_mut().shutdown().await;
                    return Ok(());
                }
                Next::StartTls => {
                    let Some(acceptor) = self.settings.tls.clone() else { return Ok(()) };
                    // Anything the client pipelined after STARTTLS is discarded: it was
                    // sent in the clear and must not be executed inside the TLS session.
                    let Stream::Plain(tcp) = reader.into_inner() else { return Ok(()) };
                    let tls = match tokio::time::timeout(self.settings.idle_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(err)) => {
                            tracing::debug!(peer = %self.peer, error = %err, "TLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => return Ok(()),
                    };
                    self.tls = true;
                    self.helo = None;
                    self.reset();
                    reader = BufReader::new(Stream::Tls(Box::new(tls)));
                }
                Next::Continue => unreachable!("commands returns only to close or start TLS"),
            }
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn reply(&self, reader: &mut BufReader<Stream>, pending: &mut Vec<u8>, text: &str) -> io::Result<()> {
        pending.extend_from_slice(text.as_bytes());
        pending.extend_from_slice(b"\r\n");
        // PIPELINING: answer a group of commands together, once no further complete command
        // is waiting. Replies never pile up beyond a few kilobytes, whatever the client does.
        if !reader.buffer().contains(&b'\n') || pending.len() > 4096 {
            Self::flush(reader, pending).await?;
        }
        Ok(())
    }

    /// Answers a protocol error, counting it against the session's error budget.
    async fn refuse(&mut self, reader: &mut BufReader<Stream>, pending: &mut Vec<u8>, text: &str) -> io::Result<()> {
        self.errors += 1;
        self.reply(reader, pending, text).await
    }

    async fn flush(reader: &mut BufReader<Stream>, pending: &mut Vec<u8>) -> io::Result<()> {
        if !pending.is_empty() {
            write_timeout(reader, pending).await?;
            pending.clear();
        }
        Ok(())
    }

    async fn commands(&mut self, reader: &mut BufReader<Stream>) -> io::Result<Next> {
        let mut pending = Vec::new();
        loop {
            let stopping = *self.stop.borrow();
            if stopping {
                self.reply(reader, &mut pending, "421 4.3.2 Service shutting down, try again later").await?;
                Self::flush(reader, &mut pending).await?;
                return Ok(Next::Close);
            }
            self.commands += 1;
            if self.started.elapsed() > MAX_SESSION || self.commands > MAX_COMMANDS {
                self.reply(reader, &mut pending, "421 4.7.0 Session too long, closing connection").await?;
                Self::flush(reader, &mut pending).await?;
                return Ok(Next::Close);
            }
            if self.errors >= MAX_ERRORS {
                self.reply(reader, &mut pending, "421 4.7.0 Too many errors, closing connection").await?;
                Self::flush(reader, &mut pending).await?;
                return Ok(Next::Close);
            }
            let line = match tokio::time::timeout(self.settings.idle_timeout, read_line(reader, MAX_COMMAND_LINE)).await
            {
                Err(_) => {
                    Self::flush(reader, &mut pending).await?;
                    write_timeout(reader, b"421 4.4.2 Idle timeout, closing connection\r\n").await?;
                    return Ok(Next::Close);
                }
                Ok(line) => line?,
            };
            let line = match line {
                Line::Eof => return Ok(Next::Close),
                Line::TooLong => {
                    self.refuse(reader, &mut pending, "500 5.5.2 Line too long").await?;
                    continue;
                }
                Line::Text(line) => line,
            };
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let (verb, argument) = match text.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
                None => (text.to_ascii_uppercase(), ""),
            };
            match self.command(reader, &mut pending, &verb, argument).await? {
                Next::Continue => {}
                other => {
                    Self::flush(reader, &mut pending).await?;
                    return Ok(other);
                }
            }
        }
    }

    async fn command(
        &mut self,
        reader: &mut BufReader<Stream>,
        pending: &mut Vec<u8>,
        verb: &str,
        argument: &str,
    ) -> io::Result<Next> {
        match verb {
            "EHLO" | "HELO" => {
                if argument.is_empty() || argument.len() > 255 {
                    self.refuse(reader, pending, "501 5.5.4 A domain or address is required").await?;
                    return Ok(Next::Continue);
                }
                self.helo = Some(argument.to_owned());
                self.reset();
                let host = &self.settings.hostname;
                if verb == "HELO" {
                    self.reply(reader, pending, &format!("250 {host}")).await?;
                } else {
                    let mut lines = vec![
                        host.clone(),
                        format!("SIZE {}", self.settings.max_message_bytes),
                        "8BITMIME".into(),
                        "PIPELINING".into(),
                        "ENHANCEDSTATUSCODES".into(),
                    ];
                    if self.settings.tls.is_some() && !self.tls {
                        lines.push("STARTTLS".into());
                    }
                    let last = lines.len() - 1;
                    let reply = lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                        .collect::<Vec<_>>()
                        .join("\r\n");
                    self.reply(reader, pending, &reply).await?;
                }
            }
            "STARTTLS" => {
                if self.settings.tls.is_none() || self.tls {
                    self.refuse(reader, pending, "502 5.5.1 STARTTLS not available").await?;
                } else if !argument.is_empty() {
                    self.reply(reader, pending, "501 5.5.4 No parameters allowed").await?;
                } else {
                    Self::flush(reader, pending).await?;
                    write_timeout(reader, b"220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
            }
            "MAIL" => {
                if self.helo.is_none() {
                    self.refuse(reader, pending, "503 5.5.1 Say EHLO first").await?;
                } else if self.mail_from.is_some() {
                    self.refuse(reader, pending, "503 5.5.1 Sender already given").await?;
                } else {
                    match parse_path(argument, "FROM:") {
                        None => {
                            self.refuse(reader, pending, "501 5.1.7 Bad sender address syntax").await?;
                        }
                        Some((from, params)) => {
                            let declared = params.split_whitespace().find_map(|p| {
                                p.get(..5)
                                    .filter(|k| k.eq_ignore_ascii_case("SIZE="))
                                    .and_then(|_| p[5..].parse::<usize>().ok())
                            });
                            if let Some(size) = declared.filter(|n| *n > self.settings.max_message_bytes) {
                                let text = format!(
                                    "552 5.3.4 Declared SIZE={size} exceeds the limit of {} bytes",
                                    self.settings.max_message_bytes
                                );
                                self.reply(reader, pending, &text).await?;
                            } else if !self
                                .limits
                                .allow_message(self.peer.ip(), self.settings.messages_per_minute_per_ip)
                            {
                                self.reply(
                                    reader,
                                    pending,
                                    "450 4.7.1 Too many messages from your address, try again later",
                                )
                                .await?;
                            } else {
                                self.mail_from = Some(from);
                                self.reply(reader, pending, "250 2.1.0 Sender OK").await?;
                            }
                        }
                    }
                }
            }
            "RCPT" => {
                if self.mail_from.is_none() {
                    self.refuse(reader, pending, "503 5.5.1 Need MAIL first").await?;
                } else {
                    match parse_path(argument, "TO:") {
                        None => {
                            self.refuse(reader, pending, "501 5.1.3 Bad recipient address syntax").await?;
                        }
                        Some((to, _)) if !self.delivery.accepts(&to) => {
                            self.refuse(reader, pending, "550 5.1.1 No such mailbox here").await?;
                        }
                        Some(_) if self.rcpt_to.len() >= self.settings.max_recipients => {
                            self.reply(reader, pending, "452 4.5.3 Too many recipients").await?;
                        }
                        Some((to, _)) => {
                            self.rcpt_to.push(to);
                            self.reply(reader, pending, "250 2.1.5 Recipient OK").await?;
                        }
                    }
                }
            }
            "DATA" => {
                if self.mail_from.is_none() || self.rcpt_to.is_empty() {
                    self.refuse(reader, pending, "503 5.5.1 Need MAIL and RCPT first").await?;
                    return Ok(Next::Continue);
                }
                Self::flush(reader, pending).await?;
                write_timeout(reader, b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                // Held until the delivery returned: the data is in memory until then.
                let mut held = Held { budget: self.settings.memory.clone(), bytes: 0 };
                let outcome = tokio::time::timeout(
                    MAX_SESSION,
                    read_data(reader, self.settings.max_message_bytes, self.settings.idle_timeout, &mut held),
                )
                .await;
                let data = match outcome {
                    Err(_) => return Ok(Next::Close),
                    Ok(result) => match result? {
                        DataOutcome::Eof => return Ok(Next::Close),
                        DataOutcome::TooBig => {
                            self.reset();
                            let text = format!(
                                "552 5.3.4 Message larger than the SIZE limit of {} bytes as sent",
                                self.settings.max_message_bytes
                            );
                            self.reply(reader, pending, &text).await?;
                            return Ok(Next::Continue);
                        }
                        DataOutcome::Busy => {
                            self.reset();
                            drop(held);
                            tracing::warn!(peer = %self.peer, "smtp message refused for now: the memory budget of all connections is used");
                            self.reply(
                                reader,
                                pending,
                                "452 4.3.1 Insufficient system storage, please try again later",
                            )
                            .await?;
                            return Ok(Next::Continue);
                        }
                        DataOutcome::Complete(data) => data,
                    },
                };
                let envelope = Envelope {
                    peer: self.peer,
                    helo: self.helo.clone().unwrap_or_default(),
                    mail_from: self.mail_from.clone().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut self.rcpt_to),
                    tls: self.tls,
                    data,
                };
                self.reset();
                // The 250 goes out only after the delivery committed the message.
                let reply = match self.delivery.deliver(envelope).await {
                    Ok(receipt) => format!("250 2.0.0 OK: {receipt}"),
                    Err(DeliveryError::Temporary(reason)) => {
                        tracing::warn!(peer = %self.peer, reason = %reason, "smtp delivery failed temporarily");
                        "451 4.3.0 Temporary failure, please try again later".to_owned()
                    }
                    Err(DeliveryError::Permanent(reason)) => {
                        let reason: String = reason.chars().filter(|c| !c.is_control()).take(200).collect();
                        format!("554 5.6.0 {reason}")
                    }
                };
                drop(held);
                self.reply(reader, pending, &reply).await?;
            }
            "RSET" => {
                self.reset();
                self.reply(reader, pending, "250 2.0.0 OK").await?;
            }
            "NOOP" => self.reply(reader, pending, "250 2.0.0 OK").await?,
            "QUIT" => {
                self.reply(reader, pending, "221 2.0.0 Bye").await?;
                return Ok(Next::Close);
            }
            "VRFY" => self.reply(reader, pending, "252 2.5.0 Cannot verify, but will accept mail").await?,
            "HELP" => self.reply(reader, pending, "214 2.0.0 See RFC 5321").await?,
            "BDAT" => {
                self.refuse(reader, pending, "502 5.5.1 CHUNKING not offered").await?;
            }
            _ => {
                self.refuse(reader, pending, "500 5.5.2 Command not recognised").await?;
            }
        }
        Ok(Next::Continue)
    }
}

/// Loads a PEM certificate chain and private key into a STARTTLS acceptor.
pub fn tls_acceptor(certificate_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certificate_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if certs.is_empty() {
        return Err("certificate: no certificate found in the PEM file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key: {e}"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed_strictly() {
        assert_eq!(parse_path("FROM:<a@b.org> SIZE=10", "FROM:"), Some(("a@b.org".into(), "SIZE=10".into())));
        assert_eq!(parse_path("from: <a@b.org>", "FROM:"), Some(("a@b.org".into(), String::new())));
        assert_eq!(parse_path("FROM:<>", "FROM:"), Some((String::new(), String::new())));
        assert_eq!(parse_path("TO:<@relay.org:u@b.org>", "TO:"), Some(("u@b.org".into(), String::new())));
        assert_eq!(parse_path("FROM:a@b.org", "FROM:"), None);
        assert_eq!(parse_path("TO:<a b@c>", "TO:"), None);
        assert_eq!(parse_path("TO", "TO:"), None);
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_ends_only_at_crlf_dot_crlf() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\nbare\n.\nstill\n.\r\ndata\r\n.\r\nNEXT\r\n";
        let mut reader = BufReader::new(input);
        let mut held = Held { budget: MemoryBudget::new(1 << 20), bytes: 0 };
        match read_data(&mut reader, 1000, Duration::from_secs(5), &mut held).await.unwrap() {
            DataOutcome::Complete(data) => {
                assert_eq!(data, b"Subject: x\r\n\r\n.leading dot\r\nbare\n.\nstill\n.\r\ndata\r\n".to_vec());
            }
            other => panic!("{other:?}"),
        }
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest).await.unwrap();
        assert_eq!(rest, "NEXT\r\n");
    }

    #[tokio::test]
    async fn oversized_data_is_drained_not_kept() {
        let mut input = b"x".repeat(5000);
        input.extend_from_slice(b"\r\n.\r\n");
        let mut reader = BufReader::new(&input[..]);
        let mut held = Held { budget: MemoryBudget::new(1 << 20), bytes: 0 };
        assert!(matches!(
            read_data(&mut reader, 100, Duration::from_secs(5), &mut held).await.unwrap(),
            DataOutcome::TooBig
        ));
    }

    #[tokio::test]
    async fn connections_share_one_memory_budget_and_give_it_back() {
        let budget = MemoryBudget::new(3000);
        let message = |n: usize| {
            let mut input = b"y".repeat(n);
            input.extend_from_slice(b"\r\n.\r\nNEXT\r\n");
            input
        };
        // One connection holds 2000 bytes (its message is being delivered)...
        let first = message(1998);
        let mut held_first = Held { budget: budget.clone(), bytes: 0 };
        let mut reader = BufReader::new(&first[..]);
        let outcome = read_data(&mut reader, 10_000, Duration::from_secs(5), &mut held_first).await.unwrap();
        assert!(matches!(outcome, DataOutcome::Complete(ref d) if d.len() == 2000), "{outcome:?}");
        assert_eq!(budget.used(), 2000);
        // ...so another's 2000 bytes, within its own SIZE limit, do not fit: drained, refused
        // for now, and the stream stays in step (the next command is read as a command).
        let second = message(1998);
        let mut held_second = Held { budget: budget.clone(), bytes: 0 };
        let mut reader = BufReader::new(&second[..]);
        let outcome = read_data(&mut reader, 10_000, Duration::from_secs(5), &mut held_second).await.unwrap();
        assert!(matches!(outcome, DataOutcome::Busy), "{outcome:?}");
        drop(held_second);
        assert_eq!(budget.used(), 2000, "a refused message holds nothing");
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest).await.unwrap();
        assert_eq!(rest, "NEXT\r\n");
        // Once the first message is delivered, its bytes are given back and the second fits.
        drop(held_first);
        assert_eq!(budget.used(), 0);
        let mut held_again = Held { budget: budget.clone(), bytes: 0 };
        let mut reader = BufReader::new(&second[..]);
        let outcome = read_data(&mut reader, 10_000, Duration::from_secs(5), &mut held_again).await.unwrap();
        assert!(matches!(outcome, DataOutcome::Complete(_)), "{outcome:?}");
    }

    #[tokio::test]
    async fn long_command_lines_are_refused_without_buffering() {
        let mut input = b"A".repeat(10_000);
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut reader = BufReader::new(&input[..]);
        assert!(matches!(read_line(&mut reader, 100).await.unwrap(), Line::TooLong));
        assert!(matches!(read_line(&mut reader, 100).await.unwrap(), Line::Text(l) if l == b"NOOP\r\n"));
    }
}
