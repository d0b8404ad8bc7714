//! The use-case error type.

use embargo_store::StoreError;

/// What a use case can fail with. Each variant says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist (or the actor may not know it exists).
    #[error("{0} not found")]
    NotFound(String),
    /// The actor may not do this.
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// The request conflicts with the current state (for example an illegal transition).
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// Too many attempts: wait, then try again.
    #[error("{0}")]
    TooMany(String),
    /// Too many attempts, and the earliest retry is known (HTTP `Retry-After`).
    #[error("{message}")]
    Throttled {
        /// What happened and when to try again, for people.
        message: String,
        /// Seconds until an attempt may succeed.
        retry_after_secs: u64,
    },
    /// A temporary failure (database busy or unreachable): retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else. Logged with its cause chain, never shown to outsiders.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => AppError::Conflict(format!("{what} already exists")),
            err if err.is_transient() => AppError::Unavailable(err.to_string()),
            err => AppError::Internal(anyhow::Error::new(err)),
        }
    }
}

impl From<embargo_domain::TransitionError> for AppError {
    fn from(err: embargo_domain::TransitionError) -> Self {
        AppError::Conflict(err.to_string())
    }
}

/// A target that does not parse is bad input, told as it is.
impl From<embargo_domain::TargetError> for AppError {
    fn from(err: embargo_domain::TargetError) -> Self {
        AppError::Invalid(err.to_string())
    }
}

impl From<embargo_domain::AdvisoryError> for AppError {
    fn from(err: embargo_domain::AdvisoryError) -> Self {
        AppError::Conflict(err.to_string())
    }
}

impl From<embargo_domain::CveIdError> for AppError {
    fn from(err: embargo_domain::CveIdError) -> Self {
        AppError::Conflict(err.to_string())
    }
}

impl From<embargo_domain::disclosure::PlanError> for AppError {
    fn from(err: embargo_domain::disclosure::PlanError) -> Self {
        match err {
            embargo_domain::disclosure::PlanError::Incomplete => AppError::Invalid(err.to_string()),
            other => AppError::Conflict(other.to_string()),
        }
    }
}
