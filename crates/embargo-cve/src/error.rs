//! What can go wrong talking to CVE Services. Messages name the operation, the HTTP status and
//! the API's own error code and message; they never contain the API key (see
//! [`Error::scrub`]).

use serde_json::Value;

/// A failed CVE Services call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (bad base URL, missing user or organisation, no API key
    /// outside dry run). Nothing was sent.
    #[error("CVE Services is not configured correctly: {0}")]
    Config(String),
    /// The call's arguments are wrong (an amount of 0, a year out of range). Nothing was sent.
    #[error("invalid CVE Services request: {0}")]
    Invalid(String),
    /// 401: the organisation, user or API key was refused. Permanent until the credentials
    /// are fixed.
    #[error("CVE Services refused the credentials of {user} at {org} ({operation}: {status} {code}: {message})")]
    Unauthorized {
        /// What was being done, such as `POST /cve-id`.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The API's error code, such as `UNAUTHORIZED`.
        code: String,
        /// The API's message.
        message: String,
        /// `CVE-API-ORG`.
        org: String,
        /// `CVE-API-USER`.
        user: String,
    },
    /// Another 4xx: the service refused the request and will refuse it again as it is
    /// (a quota, an ID of another organisation, a container that fails the schema).
    #[error("CVE Services refused {operation} ({status} {code}): {message}{}", details_suffix(.details))]
    Refused {
        /// What was being done.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The API's error code, such as `EXCEEDED_ID_QUOTA` or `INVALID_JSON_SCHEMA`.
        code: String,
        /// The API's message.
        message: String,
        /// The API's details, one line each (schema errors, bad parameters).
        details: Vec<String>,
    },
    /// 429, 5xx, a timeout or a failed connection: try again later.
    #[error("CVE Services is unavailable for {operation}, retry later: {message}")]
    RetryLater {
        /// What was being done.
        operation: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The answer could not be understood (not the documented JSON, an unexpected status).
    #[error("unexpected answer from CVE Services to {operation}: {message}")]
    Response {
        /// What was being done.
        operation: String,
        /// What was wrong with the answer.
        message: String,
    },
}

impl Error {
    /// Whether the same call may succeed later (429, 5xx, timeouts, connection failures).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetryLater { .. })
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Refused { status, .. } => Some(*status),
            Self::RetryLater { status, .. } => *status,
            _ => None,
        }
    }

    /// The API's error code (`UNAUTHORIZED`, `EXCEEDED_ID_QUOTA`, …), when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { code, .. } | Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Replaces every occurrence of `key` in the error's texts (a service that echoes
    /// headers must not put the key into logs).
    pub(crate) fn scrub(self, key: &str) -> Self {
        if key.is_empty() {
            return self;
        }
        let clean = |text: String| text.replace(key, "[redacted]");
        match self {
            Self::Unauthorized { operation, status, code, message, org, user } => Self::Unauthorized {
                operation,
                status,
                code: clean(code),
                message: clean(message),
                org: clean(org),
                user: clean(user),
            },
            Self::Refused { operation, status, code, message, details } => Self::Refused {
                operation,
                status,
                code: clean(code),
                message: clean(message),
                details: details.into_iter().map(clean).collect(),
            },
            Self::RetryLater { operation, status, message } => {
                Self::RetryLater { operation, status, message: clean(message) }
            }
            Self::Response { operation, message } => Self::Response { operation, message: clean(message) },
            other => other,
        }
    }
}

fn details_suffix(details: &[String]) -> String {
    if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }
}

/// The API's `details`, one line each: bad-request entries (`{msg, param, location}`), schema
/// errors (`{errors: [{instancePath, message}]}`), or any other JSON as it is.
pub(crate) fn detail_lines(details: Option<&Value>) -> Vec<String> {
    let Some(details) = details else { return Vec::new() };
    let entries: Vec<&Value> = match details {
        Value::Array(items) => items.iter().collect(),
        Value::Object(object) => match object.get("errors") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![details],
        },
        Value::Null => Vec::new(),
        other => vec![other],
    };
    entries
        .into_iter()
        .take(20)
        .map(|entry| {
            let text = |key: &str| entry.get(key).and_then(Value::as_str);
            let place = text("param").or_else(|| text("instancePath")).or_else(|| text("path"));
            let what = text("msg").or_else(|| text("message"));
            match (place, what) {
                (Some(place), Some(what)) => format!("{place}: {what}"),
                (None, Some(what)) => what.to_owned(),
                _ => entry.to_string(),
            }
        })
        .collect()
}
