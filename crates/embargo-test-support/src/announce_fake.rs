//! Fake announcement services on one loopback server (`127.0.0.1:<random port>`, feature
//! `announce-fake`): a Slack incoming webhook, X API v2, a Mastodon instance and a Bluesky
//! PDS, each under its own path prefix, answering in the shapes of their documented APIs:
//!
//! - **Slack** (`/slack/services/T…/B…/<secret>`): `POST` of a JSON payload with `text` or
//!   `blocks` → `200 ok` (text); an unknown webhook path → `404 no_service`; not JSON →
//!   `400 invalid_payload`; neither `text` nor `blocks` → `400 no_text`.
//! - **X** (`/x`): `POST /2/tweets` (`{"text"}`) → `201 {"data": {"id", "text",
//!   "edit_history_tweet_ids"}}`; `GET /2/users/me`; `GET /2/users/:id/tweets`
//!   (`max_results` 5–100, `pagination_token`; newest first; `data` absent when empty). Every
//!   call needs `Authorization: Bearer <token>` (else `401` problem details). A text over 280
//!   (characters, a URL counting 23: the fake does not weigh CJK) → `400`; the same text as
//!   an earlier post → `403` duplicate content, as X does.
//! - **Mastodon** (`/mastodon`): `POST /api/v1/statuses` (JSON or form `status`) → a Status;
//!   `Idempotency-Key` honoured (the same key returns the same status and posts nothing);
//!   over 500 characters (URLs 23) → `422`; `GET /api/v1/accounts/verify_credentials`;
//!   `GET /api/v1/accounts/:id/statuses` (`limit` ≤ 40, `max_id`; newest first; `content`
//!   is HTML). Bearer token checked (`401 {"error"}`).
//! - **Bluesky** (`/bsky/xrpc/…`): `com.atproto.server.createSession` (handle and app
//!   password → `accessJwt`, `did`), `com.atproto.repo.createRecord` (Bearer `accessJwt`;
//!   `repo` is the DID; an `app.bsky.feed.post` with `text` ≤ 300 characters and
//!   `createdAt`; the `rkey`, when given, must be a TID and not taken → `400
//!   InvalidRequest`), `com.atproto.repo.getRecord` (`400 RecordNotFound` when absent),
//!   `com.atproto.repo.listRecords` (newest first, `limit` ≤ 100).
//!
//! **Faults** ([`AnnounceFake::fail_next`]) apply to the next N requests of a service that
//! would post (Slack's webhook, `POST /2/tweets`, `POST /api/v1/statuses`, `createRecord`):
//! [`Fault::RateLimited`] (429 with `Retry-After` and the service's reset header, nothing
//! posted), [`Fault::ServerError`] (500, nothing posted), [`Fault::DropAfterEffect`] (posts,
//! then closes the connection without an answer) and [`Fault::StallAfterEffect`] (posts, then
//! waits before closing, past the client's timeout). Reads are never faulted.
//!
//! [`AnnounceFake::posts`] gives each service's posted texts (the effects), and
//! [`AnnounceFake::requests`] every request with its headers and body.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A service of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// The Slack webhook.
    Slack,
    /// X API v2.
    X,
    /// Mastodon.
    Mastodon,
    /// Bluesky.
    Bluesky,
}

/// What the next posting request of a service suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <seconds>`; nothing is posted.
    RateLimited {
        /// The seconds announced.
        retry_after: u64,
    },
    /// 500; nothing is posted.
    ServerError,
    /// The post is made, then the connection is closed without an answer.
    DropAfterEffect,
    /// The post is made, then the connection stays silent this long, then closes.
    StallAfterEffect(Duration),
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The service it was for (`None` for an unknown path).
    pub service: Option<Service>,
    /// The method.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: String,
    /// The status answered (0 when the connection was dropped or stalled).
    pub status: u16,
}

/// The X user the fake's token belongs to.
pub const X_USER_ID: &str = "1850000000000000001";
/// The Mastodon account's ID.
pub const MASTODON_ACCOUNT_ID: &str = "109000000000000001";
/// The Bluesky account's handle.
pub const BLUESKY_HANDLE: &str = "security.example.org";
/// The Bluesky account's DID.
pub const BLUESKY_DID: &str = "did:plc:embargofake0000000000000";

#[derive(Debug, Clone)]
struct Post {
    id: String,
    text: String,
    created_at: String,
    idempotency_key: Option<String>,
    /// Bluesky: the record.
    record: Value,
}

#[derive(Debug, Default)]
struct Inner {
    slack_secret: String,
    x_token: String,
    mastodon_token: String,
    bluesky_password: String,
    bluesky_jwt: String,
    base: String,
    next_id: u64,
    posts: HashMap<Service, Vec<Post>>,
    faults: HashMap<Service, VecDeque<Fault>>,
    requests: Vec<Recorded>,
}

/// A running fake; stops when dropped.
#[derive(Debug)]
pub struct AnnounceFake {
    base: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl AnnounceFake {
    /// Starts the fake on its own thread, with random credentials.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let address = listener.local_addr().expect("local address");
        let base = format!("http://{address}");
        let inner = Arc::new(Mutex::new(Inner {
            slack_secret: random_hex(),
            x_token: format!("x-{}", random_hex()),
            mastodon_token: format!("m-{}", random_hex()),
            bluesky_password: "abcd-efgh-ijkl-mnop".into(),
            bluesky_jwt: format!("jwt-{}", random_hex()),
            base: base.clone(),
            next_id: 1,
            ..Inner::default()
        }));
        let (shutdown, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the fake");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(serve(stream, state.clone()));
                            }
                        }
                    }
                }
            });
        });
        Self { base, inner, shutdown: Some(shutdown), thread: Some(thread) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The webhook's URL (a credential, like Slack's).
    pub fn slack_webhook_url(&self) -> String {
        format!("{}/slack/services/T0000FAKE/B0000FAKE/{}", self.base, self.lock().slack_secret)
    }

    /// X's API base (`/2/tweets` is appended).
    pub fn x_api_url(&self) -> String {
        format!("{}/x", self.base)
    }

    /// The X bearer token it accepts.
    pub fn x_token(&self) -> String {
        self.lock().x_token.clone()
    }

    /// The Mastodon instance's base URL (`/api/v1/statuses` is appended).
    pub fn mastodon_url(&self) -> String {
        format!("{}/mastodon", self.base)
    }

    /// The Mastodon access token it accepts.
    pub fn mastodon_token(&self) -> String {
        self.lock().mastodon_token.clone()
    }

    /// The Bluesky service URL (`/xrpc/…` is appended).
    pub fn bluesky_url(&self) -> String {
        format!("{}/bsky", self.base)
    }

    /// The Bluesky app password it accepts for [`BLUESKY_HANDLE`].
    pub fn bluesky_password(&self) -> String {
        self.lock().bluesky_password.clone()
    }

    /// The next `n` posting requests of `service` suffer `fault`.
    pub fn fail_next(&self, service: Service, fault: Fault, n: usize) {
        let mut inner = self.lock();
        let queue = inner.faults.entry(service).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// The texts posted on `service`, oldest first (Slack: the payloads as sent; Bluesky:
    /// the records' `text`).
    pub fn posts(&self, service: Service) -> Vec<String> {
        self.lock().posts.get(&service).map(|posts| posts.iter().map(|p| p.text.clone()).collect()).unwrap_or_default()
    }

    /// The Bluesky records, by record key.
    pub fn bluesky_records(&self) -> BTreeMap<String, Value> {
        self.lock()
            .posts
            .get(&Service::Bluesky)
            .map(|posts| posts.iter().map(|p| (p.id.clone(), p.record.clone())).collect())
            .unwrap_or_default()
    }

    /// Adds a post made elsewhere (another tool, an older announcement), for reconciling
    /// tests: `text` on `service`, newest.
    pub fn add_post(&self, service: Service, text: &str) {
        let mut inner = self.lock();
        let id = inner.new_id(service);
        let record = json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": now()});
        inner.posts.entry(service).or_default().push(Post {
            id,
            text: text.to_owned(),
            created_at: now(),
            idempotency_key: None,
            record,
        });
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests of `service`.
    pub fn requests_of(&self, service: Service) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.service == Some(service)).collect()
    }
}

impl Drop for AnnounceFake {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now() -> String {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // RFC 3339 without a date library: seconds since the epoch, rendered by hand.
    let secs = since.as_secs();
    let (days, rest) = (secs / 86400, secs % 86400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl Inner {
    fn new_id(&mut self, service: Service) -> String {
        self.next_id += 1;
        match service {
            Service::X => format!("{}", 1_870_000_000_000_000_000u64 + self.next_id),
            Service::Mastodon => format!("{}", 113_000_000_000_000_000u64 + self.next_id),
            _ => format!("{}", self.next_id),
        }
    }
}

/// An answer: status, content type, body, extra headers.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, content_type: "application/json; charset=utf-8", body: body.to_string(), headers: Vec::new() }
    }

    fn text(status: u16, body: &str) -> Self {
        Self { status, content_type: "text/html", body: body.to_owned(), headers: Vec::new() }
    }
}

struct Request {
    method: String,
    target: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn bearer(&self) -> Option<&str> {
        self.header("authorization").and_then(|v| v.strip_prefix("Bearer "))
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), parse_query(query)),
        None => (target.clone(), BTreeMap::new()),
    };
    Some(Request { method, target, path, query, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

async fn serve(mut stream: TcpStream, inner: Arc<Mutex<Inner>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let service = service_of(&request.path);
    let lock = || inner.lock().unwrap_or_else(|e| e.into_inner());
    let fault = match service {
        Some(service) if posts(service, &request) => lock().faults.get_mut(&service).and_then(VecDeque::pop_front),
        _ => None,
    };
    let reply = match fault {
        Some(Fault::RateLimited { retry_after }) => Some(rate_limited(service, retry_after)),
        Some(Fault::ServerError) => Some(server_error(service)),
        _ => Some(handle(&mut lock(), service, &request)),
    };
    let status = match fault {
        Some(Fault::DropAfterEffect | Fault::StallAfterEffect(_)) => 0,
        _ => reply.as_ref().map_or(0, |r| r.status),
    };
    lock().requests.push(Recorded {
        service,
        method: request.method.clone(),
        target: request.target.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        status,
    });
    match fault {
        Some(Fault::DropAfterEffect) => {
            let _ = stream.shutdown().await;
        }
        Some(Fault::StallAfterEffect(wait)) => {
            tokio::time::sleep(wait).await;
            let _ = stream.shutdown().await;
        }
        _ => {
            if let Some(reply) = reply {
                let mut head = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reason(reply.status),
                    reply.content_type,
                    reply.body.len()
                );
                for (name, value) in &reply.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(reply.body.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        }
    }
}

fn service_of(path: &str) -> Option<Service> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    match first {
        "slack" => Some(Service::Slack),
        "x" => Some(Service::X),
        "mastodon" => Some(Service::Mastodon),
        "bsky" => Some(Service::Bluesky),
        _ => None,
    }
}

/// Whether the request would post (the ones faults apply to).
fn posts(service: Service, request: &Request) -> bool {
    request.method == "POST"
        && match service {
            Service::Slack => true,
            Service::X => request.path == "/x/2/tweets",
            Service::Mastodon => request.path == "/mastodon/api/v1/statuses",
            Service::Bluesky => request.path == "/bsky/xrpc/com.atproto.repo.createRecord",
        }
}

fn rate_limited(service: Option<Service>, retry_after: u64) -> Reply {
    let reset_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() + retry_after;
    let mut reply = match service {
        Some(Service::Slack) => Reply::text(429, "rate_limited"),
        Some(Service::X) => Reply::json(
            429,
            json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
        ),
        Some(Service::Mastodon) => Reply::json(429, json!({"error": "Too many requests"})),
        _ => Reply::json(429, json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})),
    };
    reply.headers.push(("Retry-After".into(), retry_after.to_string()));
    match service {
        Some(Service::X) => reply.headers.push(("x-rate-limit-reset".into(), reset_unix.to_string())),
        Some(Service::Bluesky) => reply.headers.push(("ratelimit-reset".into(), reset_unix.to_string())),
        _ => {}
    }
    reply
}

fn server_error(service: Option<Service>) -> Reply {
    match service {
        Some(Service::Slack) => Reply::text(500, "rollup_error"),
        Some(Service::X) => {
            Reply::json(500, json!({"title": "Internal Server Error", "type": "about:blank", "status": 500}))
        }
        Some(Service::Mastodon) => {
            Reply::json(500, json!({"error": "We're sorry, but something went wrong on our end."}))
        }
        _ => Reply::json(500, json!({"error": "InternalServerError", "message": "Internal Server Error"})),
    }
}

fn handle(inner: &mut Inner, service: Option<Service>, request: &Request) -> Reply {
    match service {
        Some(Service::Slack) => slack(inner, request),
        Some(Service::X) => x(inner, request),
        Some(Service::Mastodon) => mastodon(inner, request),
        Some(Service::Bluesky) => bluesky(inner, request),
        None => Reply::text(404, "not found"),
    }
}

/// Characters, with every `http(s)://` word counting 23.
fn count(text: &str) -> usize {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let bare = word.trim_end();
            if bare.starts_with("https://") || bare.starts_with("http://") {
                23 + (word.chars().count() - bare.chars().count())
            } else {
                word.chars().count()
            }
        })
        .sum()
}

fn slack(inner: &mut Inner, request: &Request) -> Reply {
    let expected = format!("/slack/services/T0000FAKE/B0000FAKE/{}", inner.slack_secret);
    if request.path != expected {
        return Reply::text(404, "no_service");
    }
    if request.method != "POST" {
        return Reply::text(405, "invalid_method");
    }
    let Some(payload) = request.json().filter(Value::is_object) else {
        return Reply::text(400, "invalid_payload");
    };
    if payload.get("text").is_none() && payload.get("blocks").is_none() {
        return Reply::text(400, "no_text");
    }
    let id = inner.new_id(Service::Slack);
    inner.posts.entry(Service::Slack).or_default().push(Post {
        id,
        text: request.body.clone(),
        created_at: now(),
        idempotency_key: None,
        record: Value::Null,
    });
    Reply::text(200, "ok")
}

fn x_problem(status: u16, title: &str, detail: &str) -> Reply {
    Reply::json(status, json!({"title": title, "detail": detail, "type": "about:blank", "status": status}))
}

fn x(inner: &mut Inner, request: &Request) -> Reply {
    if request.bearer() != Some(inner.x_token.as_str()) {
        return x_problem(401, "Unauthorized", "Unauthorized");
    }
    let path = request.path.trim_start_matches("/x");
    let mine = |inner: &Inner| inner.posts.get(&Service::X).cloned().unwrap_or_default();
    match (request.method.as_str(), path) {
        ("POST", "/2/tweets") => {
            let Some(text) = request.json().and_then(|b| b.get("text").and_then(Value::as_str).map(str::to_owned))
            else {
                return x_problem(400, "Invalid Request", "One or more parameters to your request was invalid.");
            };
            if count(&text) > 280 {
                return Reply::json(
                    400,
                    json!({"errors": [{"message": "Your Tweet text is too long."}], "title": "Invalid Request", "type": "https://api.twitter.com/2/problems/invalid-request"}),
                );
            }
            if mine(inner).iter().any(|p| p.text == text) {
                return x_problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.");
            }
            let id = inner.new_id(Service::X);
            inner.posts.entry(Service::X).or_default().push(Post {
                id: id.clone(),
                text: text.clone(),
                created_at: now(),
                idempotency_key: None,
                record: Value::Null,
            });
            Reply::json(201, json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}}))
        }
        ("GET", "/2/users/me") => {
            Reply::json(200, json!({"data": {"id": X_USER_ID, "name": "Embargo Security", "username": "embargo_sec"}}))
        }
        ("GET", path) if path == format!("/2/users/{X_USER_ID}/tweets") => {
            let max: usize = match request.query.get("max_results").map(|v| v.parse::<usize>()) {
                None => 10,
                Some(Ok(n)) if (5..=100).contains(&n) => n,
                _ => {
                    return x_problem(
                        400,
                        "Invalid Request",
                        "The `max_results` query parameter value is not between 5 and 100",
                    );
                }
            };
            let start: usize = request.query.get("pagination_token").and_then(|t| t.parse().ok()).unwrap_or(0);
            let mut all = mine(inner);
            all.reverse();
            let page: Vec<Value> = all
                .iter()
                .skip(start)
                .take(max)
                .map(|p| json!({"id": p.id, "text": p.text, "edit_history_tweet_ids": [p.id]}))
                .collect();
            let mut meta = json!({"result_count": page.len()});
            if let (Some(first), Some(last)) = (page.first(), page.last()) {
                meta["newest_id"] = first["id"].clone();
                meta["oldest_id"] = last["id"].clone();
            }
            if start + max < all.len() {
                meta["next_token"] = json!((start + max).to_string());
            }
            let mut body = json!({"meta": meta});
            if !page.is_empty() {
                body["data"] = Value::Array(page);
            }
            Reply::json(200, body)
        }
        ("GET", path) if path.starts_with("/2/users/") => x_problem(403, "Forbidden", "Not your timeline"),
        _ => x_problem(404, "Not Found Error", "Not found"),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn mastodon_account(base: &str) -> Value {
    json!({
        "id": MASTODON_ACCOUNT_ID, "username": "security", "acct": "security",
        "display_name": "Embargo Security", "locked": false, "bot": false,
        "url": format!("{base}/mastodon/@security"), "note": "", "followers_count": 0,
        "following_count": 0, "statuses_count": 0
    })
}

fn mastodon_status(base: &str, post: &Post) -> Value {
    let content = format!("<p>{}</p>", html_escape(&post.text).replace('\n', "<br />"));
    json!({
        "id": post.id, "created_at": post.created_at, "in_reply_to_id": null,
        "in_reply_to_account_id": null, "sensitive": false, "spoiler_text": "",
        "visibility": "public", "language": "en",
        "uri": format!("{base}/mastodon/users/security/statuses/{}", post.id),
        "url": format!("{base}/mastodon/@security/{}", post.id),
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
        "content": content, "reblog": null, "account": mastodon_account(base),
        "media_attachments": [], "mentions": [], "tags": [], "emojis": [], "card": null, "poll": null
    })
}

fn mastodon(inner: &mut Inner, request: &Request) -> Reply {
    if request.bearer() != Some(inner.mastodon_token.as_str()) {
        return Reply::json(401, json!({"error": "The access token is invalid"}));
    }
    let path = request.path.trim_start_matches("/mastodon");
    let base = inner.base.clone();
    match (request.method.as_str(), path) {
        ("POST", "/api/v1/statuses") => {
            let status = match request.json() {
                Some(body) => body.get("status").and_then(Value::as_str).map(str::to_owned),
                None => parse_query(&request.body).get("status").cloned(),
            };
            let Some(text) = status.filter(|t| !t.trim().is_empty()) else {
                return Reply::json(422, json!({"error": "Validation failed: Text can't be blank"}));
            };
            let key = request.header("idempotency-key").map(str::to_owned);
            if let Some(key) = &key
                && let Some(done) = inner
                    .posts
                    .get(&Service::Mastodon)
                    .and_then(|posts| posts.iter().find(|p| p.idempotency_key.as_ref() == Some(key)))
            {
                return Reply::json(200, mastodon_status(&base, done));
            }
            if count(&text) > 500 {
                return Reply::json(422, json!({"error": "Validation failed: Text character limit of 500 exceeded"}));
            }
            let id = inner.new_id(Service::Mastodon);
            let post = Post { id, text, created_at: now(), idempotency_key: key, record: Value::Null };
            let reply = Reply::json(200, mastodon_status(&base, &post));
            inner.posts.entry(Service::Mastodon).or_default().push(post);
            reply
        }
        ("GET", "/api/v1/accounts/verify_credentials") => Reply::json(200, mastodon_account(&base)),
        ("GET", path) if path == format!("/api/v1/accounts/{MASTODON_ACCOUNT_ID}/statuses") => {
            let limit = request.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 40);
            let max_id: Option<u128> = request.query.get("max_id").and_then(|m| m.parse().ok());
            let mut all = inner.posts.get(&Service::Mastodon).cloned().unwrap_or_default();
            all.reverse();
            let page: Vec<Value> = all
                .iter()
                .filter(|p| max_id.is_none_or(|max| p.id.parse::<u128>().is_ok_and(|id| id < max)))
                .take(limit)
                .map(|p| mastodon_status(&base, p))
                .collect();
            Reply::json(200, Value::Array(page))
        }
        _ => Reply::json(404, json!({"error": "Record not found"})),
    }
}

fn xrpc_error(status: u16, error: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": error, "message": message}))
}

fn valid_tid(rkey: &str) -> bool {
    const ALPHABET: &str = "234567abcdefghijklmnopqrstuvwxyz";
    rkey.len() == 13 && "234567abcdefghij".contains(&rkey[..1]) && rkey.chars().all(|c| ALPHABET.contains(c))
}

fn bluesky(inner: &mut Inner, request: &Request) -> Reply {
    let method = request.path.trim_start_matches("/bsky/xrpc/");
    let authorised = request.bearer() == Some(inner.bluesky_jwt.as_str());
    match (request.method.as_str(), method) {
        ("POST", "com.atproto.server.createSession") => {
            let body = request.json().unwrap_or(Value::Null);
            let identifier = body.get("identifier").and_then(Value::as_str);
            let password = body.get("password").and_then(Value::as_str);
            if !matches!(identifier, Some(BLUESKY_HANDLE) | Some(BLUESKY_DID))
                || password != Some(&inner.bluesky_password)
            {
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password");
            }
            Reply::json(
                200,
                json!({"did": BLUESKY_DID, "handle": BLUESKY_HANDLE, "accessJwt": inner.bluesky_jwt, "refreshJwt": format!("refresh-{}", inner.bluesky_jwt), "active": true}),
            )
        }
        ("POST", "com.atproto.repo.createRecord") => {
            if !authorised {
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required");
            }
            let body = request.json().unwrap_or(Value::Null);
            if body.get("repo").and_then(Value::as_str) != Some(BLUESKY_DID) {
                return xrpc_error(400, "InvalidRequest", "repo must be the session's DID");
            }
            if body.get("collection").and_then(Value::as_str) != Some("app.bsky.feed.post") {
                return xrpc_error(400, "InvalidRequest", "Invalid collection");
            }
            let record = body.get("record").cloned().unwrap_or(Value::Null);
            let text = record.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
            if record.get("$type").and_then(Value::as_str) != Some("app.bsky.feed.post")
                || record.get("createdAt").and_then(Value::as_str).is_none()
            {
                return xrpc_error(400, "InvalidRecord", "Record/createdAt must be a string");
            }
            if text.chars().count() > 300 {
                return xrpc_error(400, "InvalidRecord", "Record/text must not be longer than 300 graphemes");
            }
            let rkey = match body.get("rkey").and_then(Value::as_str) {
                Some(rkey) if !valid_tid(rkey) => return xrpc_error(400, "InvalidRequest", "Invalid record key"),
                Some(rkey) => rkey.to_owned(),
                None => format!("3l{:011}", inner.next_id),
            };
            let posts = inner.posts.entry(Service::Bluesky).or_default();
            if posts.iter().any(|p| p.id == rkey) {
                return xrpc_error(400, "InvalidRequest", "Record already exists");
            }
            posts.push(Post { id: rkey.clone(), text, created_at: now(), idempotency_key: None, record });
            let cid = format!("bafyrei{}", random_hex());
            Reply::json(
                200,
                json!({"uri": format!("at://{BLUESKY_DID}/app.bsky.feed.post/{rkey}"), "cid": cid, "commit": {"cid": cid, "rev": "3lfake"}, "validationStatus": "valid"}),
            )
        }
        ("GET", "com.atproto.repo.listRecords") => {
            let repo = request.query.get("repo").map(String::as_str);
            if !matches!(repo, Some(BLUESKY_DID) | Some(BLUESKY_HANDLE))
                || request.query.get("collection").map(String::as_str) != Some("app.bsky.feed.post")
            {
                return xrpc_error(400, "InvalidRequest", "Could not find repo");
            }
            let limit = request.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50).clamp(1, 100);
            let records: Vec<Value> = inner
                .posts
                .get(&Service::Bluesky)
                .map(|posts| {
                    posts
                        .iter()
                        .rev()
                        .take(limit)
                        .map(|p| {
                            json!({"uri": format!("at://{BLUESKY_DID}/app.bsky.feed.post/{}", p.id), "cid": "bafyreifake", "value": p.record})
                        })
                        .collect()
                })
                .unwrap_or_default();
            Reply::json(200, json!({"records": records}))
        }
        ("GET", "com.atproto.repo.getRecord") => {
            let repo = request.query.get("repo").map(String::as_str);
            let rkey = request.query.get("rkey").cloned().unwrap_or_default();
            if !matches!(repo, Some(BLUESKY_DID) | Some(BLUESKY_HANDLE))
                || request.query.get("collection").map(String::as_str) != Some("app.bsky.feed.post")
            {
                return xrpc_error(400, "RecordNotFound", "Could not locate record");
            }
            match inner.posts.get(&Service::Bluesky).and_then(|posts| posts.iter().find(|p| p.id == rkey)) {
                Some(post) => Reply::json(
                    200,
                    json!({"uri": format!("at://{BLUESKY_DID}/app.bsky.feed.post/{rkey}"), "cid": "bafyreifake", "value": post.record}),
                ),
                None => xrpc_error(
                    400,
                    "RecordNotFound",
                    &format!("Could not locate record: at://{BLUESKY_DID}/app.bsky.feed.post/{rkey}"),
                ),
            }
        }
        _ => xrpc_error(501, "MethodNotImplemented", "Method Not Implemented"),
    }
}
