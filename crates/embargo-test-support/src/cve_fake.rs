//! A fake CVE Services on `127.0.0.1:<random port>` for tests (feature `cve-fake`): the
//! endpoints Embargo uses, with in-memory state, answering in the shapes of the OpenAPI file
//! (`../shared/vectors/cve/cve-services-api`) and its error bodies (`{"error", "message",
//! "details"}`, the codes CVE Services uses).
//!
//! It checks what the real service checks, so that a test against it means something:
//! - the three credential headers on every request (`400 BAD_REQUEST` when one is missing,
//!   `401 UNAUTHORIZED` when one is wrong; `GET /cve-id/{id}` is also open to anonymous
//!   callers, as documented);
//! - `Content-Type: application/json` on bodies, and a body of exactly `{"cnaContainer": …}`;
//! - a CNA container against the CVE JSON 5.1.1 published-container schema (the bundle in
//!   `embargo-advisory`), after setting `providerMetadata` as the service does (`400
//!   INVALID_JSON_SCHEMA` with the errors in `details`); a rejection's `rejectedReasons`;
//! - reservation parameters (`amount` ≥ 1, `cve_year` from 1999 to next year, `short_name`
//!   is the caller's organisation, `batch_type` when amount > 1, at most 10 non-sequential)
//!   and the quota of reserved IDs;
//! - state rules: a record is created only for a RESERVED ID of the caller's organisation
//!   with no record, updated only when it exists.
//!
//! Every request is recorded ([`CveFake::requests`]) with its headers, query and body, refused
//! ones included. [`CveFake::fail_next`] makes the next request fail with a given status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use embargo_advisory::schema::{Schema, validate};
use serde_json::{Value, json};

/// The organisation short name the fake accepts by default.
pub const ORG: &str = "example";
/// Its UUID, as the service writes it into `providerMetadata.orgId`.
pub const ORG_UUID: &str = "b3476cb9-2e3d-41a6-98d0-0f47421a65b6";
/// The user the fake accepts.
pub const USER: &str = "cna-admin@example.org";
/// The default quota of reserved IDs.
pub const QUOTA: usize = 100;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// The path, such as `/api/cve-id`.
    pub path: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as text (empty when none).
    pub body: String,
    /// The status the fake answered.
    pub status: u16,
    /// The body it answered with.
    pub response: Value,
}

impl Recorded {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// One CVE ID the fake knows.
#[derive(Debug, Clone)]
pub struct FakeId {
    /// The owner's short name.
    pub owner: String,
    /// `RESERVED`, `PUBLISHED` or `REJECTED`.
    pub state: String,
    /// Who reserved it.
    pub user: String,
    /// When it was reserved (RFC 3339).
    pub reserved: String,
    /// When it last changed.
    pub modified: String,
    /// The full record, once there is one.
    pub record: Option<Value>,
}

#[derive(Debug)]
struct Inner {
    org: String,
    user: String,
    api_key: String,
    quota: usize,
    ids: BTreeMap<String, FakeId>,
    next_number: BTreeMap<u16, u64>,
    requests: Vec<Recorded>,
    fail_next: Option<u16>,
    /// `(method, path suffix)`: matching requests take effect and are recorded, but their
    /// answer waits until [`CveFake::release`] (see [`CveFake::hold_answers`]).
    hold: Option<(String, String)>,
    released: tokio::sync::watch::Receiver<bool>,
}

/// A running fake; stops when dropped.
#[derive(Debug)]
pub struct CveFake {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    release: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CveFake {
    /// Starts a fake for organisation [`ORG`], user [`USER`] and a random API key, on its own
    /// thread (so that it serves synchronous tests and other processes too).
    pub fn start() -> Self {
        let api_key = format!("fake-key-{:032x}", rand::random::<u128>());
        let (release, released) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Mutex::new(Inner {
            org: ORG.into(),
            user: USER.into(),
            api_key,
            quota: QUOTA,
            ids: BTreeMap::new(),
            next_number: BTreeMap::new(),
            requests: Vec::new(),
            fail_next: None,
            hold: None,
            released,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the fake");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("the fake CVE Services runs");
            });
        });
        Self {
            base_url: format!("http://{address}/api"),
            inner,
            shutdown: Some(shutdown),
            release,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:<port>/api`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The organisation short name it accepts.
    pub fn org(&self) -> String {
        self.lock().org.clone()
    }

    /// The user name it accepts.
    pub fn user(&self) -> String {
        self.lock().user.clone()
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> String {
        self.lock().api_key.clone()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Sets how many IDs may be in the RESERVED state at once.
    pub fn set_quota(&self, quota: usize) {
        self.lock().quota = quota;
    }

    /// The next request is answered with `status` (and the API's error body) whatever it is.
    pub fn fail_next(&self, status: u16) {
        self.lock().fail_next = Some(status);
    }

    /// From now on, requests with `method` whose path ends with `path_suffix` take effect
    /// and are recorded as usual, but their answer is held back until [`Self::release`]:
    /// the caller sees the call hang after the service acted on it (a test kills the caller
    /// there, between the service's effect and the caller's commit).
    pub fn hold_answers(&self, method: &str, path_suffix: &str) {
        // Held again after an earlier release.
        self.release.send_replace(false);
        self.lock().hold = Some((method.to_owned(), path_suffix.to_owned()));
    }

    /// Answers the held requests, and holds no more.
    pub fn release(&self) {
        self.lock().hold = None;
        let _ = self.release.send(true);
    }

    /// An ID as the fake holds it.
    pub fn id(&self, id: &str) -> Option<FakeId> {
        self.lock().ids.get(id).cloned()
    }

    /// Adds a RESERVED ID owned by another organisation.
    pub fn add_foreign_id(&self, id: &str, owner: &str) {
        let now = now();
        self.lock().ids.insert(
            id.to_owned(),
            FakeId {
                owner: owner.to_owned(),
                state: "RESERVED".into(),
                user: format!("someone@{owner}.example"),
                reserved: now.clone(),
                modified: now,
                record: None,
            },
        );
    }
}

impl Drop for CveFake {
    fn drop(&mut self) {
        let _ = self.release.send(true);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

/// One answer: status and JSON body.
struct Answer(StatusCode, Value);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    Answer(StatusCode::from_u16(status).expect("status"), json!({"error": code, "message": message.into()}))
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn handle(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (answer, hold) = record(&shared, &method, &uri, &headers, &body);
    if let Some(mut released) = hold {
        loop {
            let done = *released.borrow_and_update();
            if done || released.changed().await.is_err() {
                break;
            }
        }
    }
    answer.into_response()
}

/// Answers and records one request; with the receiver to wait on when its answer is held.
fn record(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Answer, Option<tokio::sync::watch::Receiver<bool>>) {
    let query: BTreeMap<String, String> =
        Query::<BTreeMap<String, String>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default();
    let body = String::from_utf8_lossy(body).into_owned();
    let mut inner = shared.lock().unwrap_or_else(|e| e.into_inner());
    let answer = answer(&mut inner, method, uri.path(), &query, headers, &body);
    inner.requests.push(Recorded {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query,
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body,
        status: answer.0.as_u16(),
        response: answer.1.clone(),
    });
    let held =
        inner.hold.as_ref().is_some_and(|(m, suffix)| m == method.as_str() && uri.path().ends_with(suffix.as_str()));
    (answer, held.then(|| inner.released.clone()))
}

fn answer(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &str,
) -> Answer {
    if let Some(status) = inner.fail_next.take() {
        let code = if status == 429 { "TOO_MANY_REQUESTS" } else { "SERVICE_UNAVAILABLE" };
        return error(status, code, "The fake was told to fail this request.");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = match (method, segments.as_slice()) {
        (&Method::POST, ["api", "cve-id"]) => Route::Reserve,
        (&Method::GET, ["api", "cve-id"]) => Route::List,
        (&Method::GET, ["api", "cve-id", id]) => Route::GetId((*id).to_owned()),
        (&Method::POST, ["api", "cve", id, "cna"]) => Route::Cna { id: (*id).to_owned(), create: true },
        (&Method::PUT, ["api", "cve", id, "cna"]) => Route::Cna { id: (*id).to_owned(), create: false },
        (&Method::POST, ["api", "cve", id, "reject"]) => Route::Reject { id: (*id).to_owned(), create: true },
        (&Method::PUT, ["api", "cve", id, "reject"]) => Route::Reject { id: (*id).to_owned(), create: false },
        _ => return error(404, "NOT_FOUND", format!("{method} {path} is not an endpoint of this fake")),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let anonymous_read = matches!(route, Route::GetId(_))
        && ["CVE-API-ORG", "CVE-API-USER", "CVE-API-KEY"].iter().all(|h| header(h).is_none());
    if !anonymous_read {
        for name in ["CVE-API-ORG", "CVE-API-USER", "CVE-API-KEY"] {
            if header(name).is_none() {
                return error(400, "BAD_REQUEST", format!("{name} header field required."));
            }
        }
        if header("CVE-API-ORG") != Some(&inner.org)
            || header("CVE-API-USER") != Some(&inner.user)
            || header("CVE-API-KEY") != Some(&inner.api_key)
        {
            return error(401, "UNAUTHORIZED", "Unauthorized");
        }
    }
    let json_body = || -> Result<Value, Answer> {
        let content_type = header(header::CONTENT_TYPE.as_str()).unwrap_or_default();
        if content_type.split(';').next().map(str::trim) != Some("application/json") {
            return Err(error(
                400,
                "BAD_REQUEST",
                format!("Content-Type must be application/json, not {content_type:?}"),
            ));
        }
        serde_json::from_str(body).map_err(|e| error(400, "BAD_REQUEST", format!("The body is not JSON: {e}")))
    };
    match route {
        Route::Reserve => reserve(inner, query),
        Route::List => list_ids(inner, query),
        Route::GetId(id) => get_id(inner, &id, anonymous_read),
        Route::Cna { id, create } => match json_body() {
            Ok(body) => write_cna(inner, &id, create, body),
            Err(answer) => answer,
        },
        Route::Reject { id, create } => match json_body() {
            Ok(body) => write_rejection(inner, &id, create, body),
            Err(answer) => answer,
        },
    }
}

enum Route {
    Reserve,
    List,
    GetId(String),
    Cna { id: String, create: bool },
    Reject { id: String, create: bool },
}

fn reserve(inner: &mut Inner, query: &BTreeMap<String, String>) -> Answer {
    let Some(amount) = query.get("amount") else {
        return error(400, "NO_AMOUNT", "The amount query parameter is required and needs to be above 0.");
    };
    let amount = match amount.parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => return error(400, "INVALID_AMOUNT", "The amount query parameter needs to be above 0."),
    };
    let Some(year) = query.get("cve_year") else {
        return error(400, "NO_YEAR", "The cve_year query parameter is required [1999-present+1].");
    };
    let this_year = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
    let year = match year.parse::<u16>() {
        Ok(y) if (1999..=this_year + 1).contains(&(y as i16)) => y,
        _ => {
            return error(
                403,
                "CANNOT_RESERVE_FOR_YEAR",
                format!("IDR is not currently configured to reserve IDs for year {year}."),
            );
        }
    };
    match query.get("short_name") {
        None => {
            return error(400, "NO_ORG_SHORTNAME", "The short_name query parameter is required to reserve CVE IDs.");
        }
        Some(name) if *name != inner.org => {
            return error(
                403,
                "ORG_CANNOT_RESERVE_FOR_OTHER",
                "The organization designated by the CVE-API-ORG header is not allowed to reserve IDs for the \
                 organization specified by the short_name query parameter.",
            );
        }
        Some(_) => {}
    }
    let sequential = match (amount, query.get("batch_type").map(String::as_str)) {
        (_, Some("sequential")) | (1, None) => true,
        (_, Some("nonsequential" | "non-sequential")) => false,
        (_, None) => {
            return error(
                400,
                "NO_BATCH_TYPE",
                "The batch_type query parameter must be specified when reserving more than one CVE ID.",
            );
        }
        (_, Some(_)) => {
            return error(
                400,
                "INVALID_BATCH_TYPE",
                "The batch_type provided is invalid. Available values are sequential, nonsequential, non-sequential.",
            );
        }
    };
    if !sequential && amount > 10 {
        return error(
            400,
            "OVER_NONSEQUENTIAL_MAX_AMOUNT",
            "The amount query parameter exceeds the maximum amount allowed. Only amounts of 10 ids or less can be \
             reserved at a time.",
        );
    }
    let reserved = inner.ids.values().filter(|i| i.owner == inner.org && i.state == "RESERVED").count();
    if reserved + amount > inner.quota {
        let mut answer =
            error(403, "EXCEEDED_ID_QUOTA", "The amount requested would exceed the organization's ID quota.");
        answer.1["details"] =
            json!({"id_quota": inner.quota, "total_reserved": reserved, "proposed_total": reserved + amount});
        return answer;
    }
    let now = now();
    let mut cve_ids = Vec::new();
    for _ in 0..amount {
        let next = inner.next_number.entry(year).or_insert(1000);
        let number = *next;
        *next += if sequential { 1 } else { 1 + rand::random::<u64>() % 7 };
        let id = format!("CVE-{year}-{number:04}");
        let entry = FakeId {
            owner: inner.org.clone(),
            state: "RESERVED".into(),
            user: inner.user.clone(),
            reserved: now.clone(),
            modified: now.clone(),
            record: None,
        };
        cve_ids.push(id_json(&id, &entry, true, false));
        inner.ids.insert(id, entry);
    }
    let remaining = inner.quota - reserved - amount;
    Answer(StatusCode::OK, json!({"cve_ids": cve_ids, "meta": {"remaining_quota": remaining}}))
}

/// `GET /cve-id`: the caller's organisation's IDs, filtered by `state` and `cve_id_year`,
/// in one page (`list-cve-ids-response.json`).
fn list_ids(inner: &Inner, query: &BTreeMap<String, String>) -> Answer {
    let ids: Vec<Value> = inner
        .ids
        .iter()
        .filter(|(_, entry)| entry.owner == inner.org)
        .filter(|(_, entry)| query.get("state").is_none_or(|s| *s == entry.state))
        .filter(|(id, _)| query.get("cve_id_year").is_none_or(|y| id.get(4..8) == Some(y.as_str())))
        .map(|(id, entry)| id_json(id, entry, true, true))
        .collect();
    let count = ids.len();
    Answer(
        StatusCode::OK,
        json!({"totalCount": count, "itemsPerPage": 500, "pageCount": 1, "currentPage": 1,
               "prevPage": null, "nextPage": null, "cve_ids": ids}),
    )
}

/// An ID in the shape of `get-cve-id-response.json` (`time` only there) or of an entry of
/// `create-cve-ids-response.json`.
fn id_json(id: &str, entry: &FakeId, full: bool, with_time: bool) -> Value {
    let mut out = json!({"cve_id": id, "cve_year": &id[4..8], "state": entry.state});
    if full {
        out["owning_cna"] = json!(entry.owner);
        out["requested_by"] = json!({"cna": entry.owner, "user": entry.user});
        out["reserved"] = json!(entry.reserved);
    }
    if with_time {
        out["time"] = json!({"created": entry.reserved, "modified": entry.modified});
    }
    out
}

fn get_id(inner: &Inner, id: &str, anonymous: bool) -> Answer {
    match inner.ids.get(id) {
        None => error(404, "ID_DNE", format!("The CVE ID {id} does not exist.")),
        Some(entry) => {
            // Owners see everything; others see a reserved ID without its owner.
            let full = !anonymous && entry.owner == inner.org;
            Answer(StatusCode::OK, id_json(id, entry, full, full))
        }
    }
}

/// The ID must exist and belong to the caller's organisation.
fn owned<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut FakeId, Answer> {
    let org = inner.org.clone();
    match inner.ids.get_mut(id) {
        None => Err(error(403, "CVEID_DNE", "The cve id does not exist.")),
        Some(entry) if entry.owner != org => {
            Err(error(403, "ORG_DOES_NOT_OWN_ID", format!("It appears that {org} does not own {id}")))
        }
        Some(entry) => Ok(entry),
    }
}

/// `{"cnaContainer": {…}}` and nothing else.
fn container(body: Value) -> Result<serde_json::Map<String, Value>, Answer> {
    let Value::Object(mut object) = body else {
        return Err(error(400, "CVE_BAD_REQUEST", "Request body format is incorrect."));
    };
    if object.len() != 1 {
        return Err(error(400, "CVE_BAD_REQUEST", "The body must be {\"cnaContainer\": {...}} and nothing else."));
    }
    match object.remove("cnaContainer") {
        Some(Value::Object(container)) => Ok(container),
        _ => Err(error(400, "CVE_BAD_REQUEST", "Request body format is incorrect.")),
    }
}

fn provider_metadata(inner: &Inner, now: &str) -> Value {
    json!({"orgId": ORG_UUID, "shortName": inner.org, "dateUpdated": now})
}

fn schema_error(errors: Vec<String>) -> Answer {
    let mut answer = error(400, "INVALID_JSON_SCHEMA", "CVE JSON schema validation FAILED.");
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|e| match e.split_once(": ") {
            Some((path, message)) => json!({"instancePath": path, "message": message}),
            None => json!({"instancePath": "", "message": e}),
        })
        .collect();
    answer.1["details"] = json!({"errors": errors});
    answer
}

fn write_cna(inner: &mut Inner, id: &str, create: bool, body: Value) -> Answer {
    let mut cna = match container(body) {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    let now = now();
    // "providerMetadata is set by the server. If provided, it will be overwritten."
    cna.insert("providerMetadata".into(), provider_metadata(inner, &now));
    let cna = Value::Object(cna);
    let problems = validate(Schema::CveCnaContainer, &cna);
    if !problems.is_empty() {
        return schema_error(problems);
    }
    let (org, user) = (inner.org.clone(), inner.user.clone());
    let entry = match owned(inner, id) {
        Ok(entry) => entry,
        Err(answer) => return answer,
    };
    if create {
        if entry.record.is_some() {
            return error(403, "CVE_RECORD_EXISTS", "The cve record for the cve id already exists.");
        }
        if entry.state != "RESERVED" {
            return error(
                403,
                "CVE_UNSUPPORTED_RECORD_STATE",
                format!("Cannot create cve record in state {}.", entry.state),
            );
        }
    } else if entry.record.is_none() {
        return error(403, "CVE_RECORD_DNE", "The cve record for the cve id does not exist.");
    }
    let published = entry
        .record
        .as_ref()
        .and_then(|r| r["cveMetadata"]["datePublished"].as_str().map(str::to_owned))
        .unwrap_or_else(|| now.clone());
    let record = json!({
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
        "cveMetadata": {
            "cveId": id,
            "assignerOrgId": ORG_UUID,
            "assignerShortName": org,
            "requesterUserId": format!("uuid-of-{user}"),
            "state": "PUBLISHED",
            "dateReserved": entry.reserved,
            "datePublished": published,
            "dateUpdated": now,
        },
        "containers": {"cna": cna},
    });
    entry.state = "PUBLISHED".into();
    entry.modified = now;
    entry.record = Some(record.clone());
    let (verb, key) = if create { ("created", "created") } else { ("updated", "updated") };
    Answer(StatusCode::OK, json!({"message": format!("{id} record was successfully {verb}."), key: record}))
}

/// The checks of `create-cve-record-rejection-request.json`: English `rejectedReasons`,
/// optional `replacedBy` CVE IDs, nothing else but `providerMetadata` and `x_` keys.
fn rejection_problems(cna: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for key in cna.keys() {
        if !["providerMetadata", "rejectedReasons", "replacedBy"].contains(&key.as_str()) && !key.starts_with("x_") {
            problems.push(format!("/cnaContainer/{key}: additional property not allowed"));
        }
    }
    match cna.get("rejectedReasons") {
        Some(Value::Array(reasons)) if !reasons.is_empty() => {
            for (i, reason) in reasons.iter().enumerate() {
                let lang = reason.get("lang").and_then(Value::as_str);
                let value = reason.get("value").and_then(Value::as_str);
                if lang.is_none() || value.is_none_or(|v| v.trim().is_empty()) {
                    problems.push(format!("/cnaContainer/rejectedReasons/{i}: needs lang and a value"));
                }
            }
            let english =
                reasons.iter().any(|r| r.get("lang").and_then(Value::as_str).is_some_and(|l| l.starts_with("en")));
            if !english {
                problems.push("/cnaContainer/rejectedReasons: needs an English entry".into());
            }
        }
        _ => problems.push("/cnaContainer/rejectedReasons: required, at least one".into()),
    }
    if let Some(replaced) = cna.get("replacedBy") {
        let valid = replaced.as_array().is_some_and(|ids| {
            !ids.is_empty() && ids.iter().all(|id| id.as_str().is_some_and(|id| id.starts_with("CVE-")))
        });
        if !valid {
            problems.push("/cnaContainer/replacedBy: must be a non-empty list of CVE IDs".into());
        }
    }
    problems
}

fn write_rejection(inner: &mut Inner, id: &str, create: bool, body: Value) -> Answer {
    let mut cna = match container(body) {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    let problems = rejection_problems(&cna);
    if !problems.is_empty() {
        return schema_error(problems);
    }
    let now = now();
    cna.insert("providerMetadata".into(), provider_metadata(inner, &now));
    let (org, user) = (inner.org.clone(), inner.user.clone());
    let entry = match owned(inner, id) {
        Ok(entry) => entry,
        Err(answer) => return answer,
    };
    if create {
        if entry.record.is_some() {
            return error(403, "CVE_RECORD_EXISTS", "The cve record for the cve id already exists.");
        }
    } else if entry.record.is_none() {
        return error(403, "CVE_RECORD_DNE", "The cve record for the cve id does not exist.");
    }
    let record = json!({
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
        "cveMetadata": {
            "cveId": id,
            "assignerOrgId": ORG_UUID,
            "assignerShortName": org,
            "requesterUserId": format!("uuid-of-{user}"),
            "state": "REJECTED",
            "dateReserved": entry.reserved,
            "dateRejected": now,
            "dateUpdated": now,
        },
        "containers": {"cna": Value::Object(cna)},
    });
    entry.state = "REJECTED".into();
    entry.modified = now;
    entry.record = Some(record.clone());
    let (verb, key) = if create { ("created", "created") } else { ("updated", "updated") };
    Answer(StatusCode::OK, json!({"message": format!("{id} record was successfully {verb}."), key: record}))
}
