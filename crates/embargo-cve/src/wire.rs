//! The API's JSON, as the OpenAPI file's schemas describe it (`schemas/cve-id/*.json`,
//! `schemas/cve/*.json` upstream). Fields the service may leave out are `Option`s; records
//! keep their containers as JSON, since the CVE record schema, not this crate, owns them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A CVE ID, `CVE-YYYY-NNNN` with four or more digits after the year.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CveId(String);

impl CveId {
    /// Parses `CVE-YYYY-NNNN…` (case-sensitive, as the API writes it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = text.strip_prefix("CVE-").and_then(|rest| rest.split_once('-')).is_some_and(|(year, number)| {
            year.len() == 4
                && year.bytes().all(|b| b.is_ascii_digit())
                && number.len() >= 4
                && number.len() <= 19
                && number.bytes().all(|b| b.is_ascii_digit())
        });
        if valid { Ok(Self(text.to_owned())) } else { Err(format!("{text:?} is not a CVE ID such as CVE-2026-1234")) }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The year part.
    pub fn year(&self) -> u16 {
        self.0[4..8].parse().expect("validated")
    }
}

impl TryFrom<String> for CveId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<CveId> for String {
    fn from(id: CveId) -> String {
        id.0
    }
}

impl fmt::Display for CveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// The state of a CVE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdState {
    /// Reserved by a CNA, no record yet.
    Reserved,
    /// A published record exists.
    Published,
    /// Rejected (with or without a rejected record).
    Rejected,
}

impl IdState {
    /// `RESERVED`, `PUBLISHED` or `REJECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Published => "PUBLISHED",
            Self::Rejected => "REJECTED",
        }
    }

    /// The inverse of [`IdState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RESERVED" => Some(Self::Reserved),
            "PUBLISHED" => Some(Self::Published),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }
}

impl fmt::Display for IdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who reserved an ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedBy {
    /// The requesting organisation's short name.
    #[serde(default)]
    pub cna: Option<String>,
    /// The requesting user.
    #[serde(default)]
    pub user: Option<String>,
}

/// When an ID was created and last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTimes {
    /// ISO 8601.
    #[serde(default)]
    pub created: Option<String>,
    /// ISO 8601.
    #[serde(default)]
    pub modified: Option<String>,
}

/// One CVE ID as `GET /cve-id/{id}` returns it and as each entry of a reservation
/// (`get-cve-id-response.json`, `create-cve-ids-response.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdInfo {
    /// The ID.
    pub cve_id: CveId,
    /// Its year, as text (`"2026"`).
    #[serde(default)]
    pub cve_year: Option<String>,
    /// The owner's short name; redacted (absent) for a reserved ID of another organisation.
    #[serde(default)]
    pub owning_cna: Option<String>,
    /// Its state.
    pub state: IdState,
    /// Who reserved it.
    #[serde(default)]
    pub requested_by: Option<RequestedBy>,
    /// When it was reserved (ISO 8601).
    #[serde(default)]
    pub reserved: Option<String>,
    /// Creation and modification times (only on `GET /cve-id/{id}`).
    #[serde(default)]
    pub time: Option<IdTimes>,
}

/// The answer to a reservation (`POST /cve-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved IDs.
    pub ids: Vec<IdInfo>,
    /// IDs the organisation may still reserve, when the service says.
    pub remaining_quota: Option<i64>,
    /// Fewer IDs than asked were reserved (HTTP 206, `RESERVED_PARTIAL_AMOUNT`): the
    /// service's range for the year ran out.
    pub partial: bool,
}

impl Reservation {
    /// Reads the body of a 200 (`partial: false`) or 206 (`partial: true`) answer.
    pub fn from_json(body: &Value, partial: bool) -> Result<Self, String> {
        let body = ReservationBody::deserialize(body).map_err(|e| e.to_string())?;
        if body.cve_ids.is_empty() && !partial {
            return Err("the reservation answer lists no CVE IDs".into());
        }
        Ok(Self { ids: body.cve_ids, remaining_quota: body.meta.and_then(|m| m.remaining_quota), partial })
    }
}

/// `create-cve-ids-response.json` (200) and the partial answer (206), which carries its IDs
/// the same way.
#[derive(Deserialize)]
struct ReservationBody {
    #[serde(default)]
    cve_ids: Vec<IdInfo>,
    #[serde(default)]
    meta: Option<ReservationMeta>,
}

#[derive(Deserialize)]
struct ReservationMeta {
    #[serde(default)]
    remaining_quota: Option<i64>,
}

/// The metadata CVE Services keeps on a record (`cveMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CveMetadata {
    /// The record's ID (`cveId`).
    pub cve_id: String,
    /// `PUBLISHED` or `REJECTED` (see [`IdState::parse`]).
    pub state: String,
    /// The assigning CNA's UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigner_org_id: Option<String>,
    /// The assigning CNA's short name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigner_short_name: Option<String>,
    /// The requesting user's UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_user_id: Option<String>,
    /// ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_reserved: Option<String>,
    /// ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_published: Option<String>,
    /// ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_updated: Option<String>,
    /// ISO 8601 (rejected records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_rejected: Option<String>,
}

/// A CVE record as the service returns it (`published-cve-example.json`,
/// `rejected-cve-example.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// `CVE_RECORD`.
    #[serde(default)]
    pub data_type: Option<String>,
    /// `5.1`, say.
    #[serde(default)]
    pub data_version: Option<String>,
    /// The service's metadata.
    pub cve_metadata: CveMetadata,
    /// `{"cna": …, "adp": […]}`, as the CVE record schema defines.
    pub containers: Value,
}

impl Record {
    /// The CNA container.
    pub fn cna(&self) -> Option<&Value> {
        self.containers.get("cna")
    }
}

/// The answer to a publication, an update or a rejection: a message and the record as
/// stored (`{"message", "created"}` or `{"message", "updated"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResponse {
    /// Such as `CVE-2026-1234 record was successfully created.`.
    pub message: Option<String>,
    /// The record.
    pub record: Record,
}

impl RecordResponse {
    /// Reads `{"message", "created"}` or `{"message", "updated"}`.
    pub fn from_json(body: &Value) -> Result<Self, String> {
        let body = RecordResponseBody::deserialize(body).map_err(|e| e.to_string())?;
        let record = body.created.or(body.updated).ok_or("the answer has neither \"created\" nor \"updated\"")?;
        Ok(Self { message: body.message, record })
    }
}

#[derive(Deserialize)]
struct RecordResponseBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    created: Option<Record>,
    #[serde(default)]
    updated: Option<Record>,
}

/// The API's error body (`schemas/errors/generic.json`, `bad-request.json`):
/// `{"error": "NAME", "message": "…", "details": …}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApiErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}
