//! The private fix of a report: release lines, their fix branches, private CI runs as a
//! small state machine, and the rule that decides whether the fix is ready for disclosure.
//!
//! ```text
//!   PENDING ──start──► RUNNING ──finish──► PASSED | FAILED | TIMED-OUT
//!      ▲                  │
//!      └──restart (the worker that ran it stopped)
//! ```
//!
//! A release line is named by the public branch that carries it (`main`, `release-1.x`);
//! its fix branch in the private repository is `fix/<line>`. The fix is ready when every
//! affected line's latest CI run on its current head passed, or a person overrode the line
//! with a reason.

use std::fmt;

/// Where a CI run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CiState {
    /// Queued; not started.
    Pending,
    /// The command is running.
    Running,
    /// The command exited 0.
    Passed,
    /// The command exited otherwise, or could not start.
    Failed,
    /// The command ran past its time limit and was killed.
    TimedOut,
}

impl CiState {
    /// Every state.
    pub const ALL: [CiState; 5] =
        [CiState::Pending, CiState::Running, CiState::Passed, CiState::Failed, CiState::TimedOut];

    /// Every code, in the order of [`Self::ALL`] (stored, and in `fix status --json`).
    pub const CODES: [&'static str; 5] = ["pending", "running", "passed", "failed", "timed-out"];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            CiState::Pending => "pending",
            CiState::Running => "running",
            CiState::Passed => "passed",
            CiState::Failed => "failed",
            CiState::TimedOut => "timed-out",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        matches!(self, CiState::Passed | CiState::Failed | CiState::TimedOut)
    }

    /// The state after `step`, or why the step is not allowed.
    pub fn apply(self, step: CiStep) -> Result<CiState, FixError> {
        match (self, step) {
            (CiState::Pending, CiStep::Start) => Ok(CiState::Running),
            // A run whose worker stopped is started again by the next worker.
            (CiState::Running, CiStep::Start) => Ok(CiState::Running),
            (CiState::Running, CiStep::Finish(to)) if to.is_final() => Ok(to),
            (from, step) => Err(FixError::Step { from, step }),
        }
    }
}

impl fmt::Display for CiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A step of a CI run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiStep {
    /// A worker starts the command.
    Start,
    /// The command ended with this state.
    Finish(CiState),
}

/// Why a fix action is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixError {
    /// A CI run cannot take this step from where it is.
    #[error("a CI run that is {from} cannot {step:?}")]
    Step {
        /// Where the run is.
        from: CiState,
        /// The step refused.
        step: CiStep,
    },
    /// Not a usable release-line name.
    #[error("{0:?} is not a release line name: use the public branch's name (letters, digits, '.', '-', '_', '/')")]
    LineName(String),
}

/// Checks a release line's name (the public branch that carries it): it must make a valid,
/// unambiguous git branch name under `fix/`.
pub fn check_line_name(line: &str) -> Result<(), FixError> {
    let bad = line.is_empty()
        || line.len() > 100
        || line.starts_with(['/', '.', '-'])
        || line.ends_with(['/', '.'])
        || line.ends_with(".lock")
        || line.contains("..")
        || line.contains("//")
        || line.contains("/.")
        || line == "@"
        || !line.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    if bad { Err(FixError::LineName(line.to_owned())) } else { Ok(()) }
}

/// The fix branch of a release line in the private repository.
pub fn fix_branch(line: &str) -> String {
    format!("fix/{line}")
}

/// The full ref of a release line's fix branch.
pub fn fix_ref(line: &str) -> String {
    format!("refs/heads/fix/{line}")
}

/// What the readiness rule needs to know about one release line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCheck<'a> {
    /// The line's name.
    pub line: &'a str,
    /// Whether the line is affected (an unaffected line needs no fix).
    pub affected: bool,
    /// The state of the latest CI run on the line's current head; `None` when none ran.
    pub ci: Option<CiState>,
    /// A person's reason to let the line through anyway.
    pub overridden: bool,
}

/// A line that keeps the fix from being ready, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The line.
    pub line: String,
    /// Its CI state (`None`: never ran on its head).
    pub ci: Option<CiState>,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ci {
            Some(state) => write!(f, "{}: CI {}", self.line, state.code()),
            None => write!(f, "{}: no CI run on its head", self.line),
        }
    }
}

/// The lines that keep the fix from being ready for disclosure: every affected line whose
/// CI did not pass on its head and that nobody overrode.
pub fn blockers(lines: &[LineCheck<'_>]) -> Vec<Blocker> {
    lines
        .iter()
        .filter(|l| l.affected && !l.overridden && l.ci != Some(CiState::Passed))
        .map(|l| Blocker { line: l.line.to_owned(), ci: l.ci })
        .collect()
}

/// The header that signs a webhook to an external CI and its callback:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the shared secret>`.
pub const SIGNATURE_HEADER: &str = "x-embargo-signature";

/// How old (or how far in the future) a signed message may be: older ones are replays.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 300;

/// Signs `body` at `unix_seconds` with `secret`: the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body);
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a signed message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or not in the `t=...,v1=...` form.
    #[error("no valid {SIGNATURE_HEADER} header")]
    Malformed,
    /// Signed too long ago or in the future: a replay, or a clock far off.
    #[error("signed at {0}, outside the {SIGNATURE_WINDOW_SECONDS} s window")]
    Stale(i64),
    /// The HMAC does not match the body under the shared secret.
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks a [`SIGNATURE_HEADER`] value for `body` at `now_unix` (constant-time comparison).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_unix: i64) -> Result<(), SignatureError> {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return Err(SignatureError::Malformed) };
    if (now_unix - t).abs() > SIGNATURE_WINDOW_SECONDS {
        return Err(SignatureError::Stale(t));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_secret_time_and_body() {
        let header = sign(b"secret", 1_000, b"{\"run\":1}");
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(verify(b"secret", &header, b"{\"run\":1}", 1_100), Ok(()));
        assert_eq!(verify(b"other", &header, b"{\"run\":1}", 1_100), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", &header, b"{\"run\":2}", 1_100), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", &header, b"{\"run\":1}", 1_400), Err(SignatureError::Stale(1_000)));
        let shifted = header.replace("t=1000", "t=1001");
        assert_eq!(verify(b"secret", &shifted, b"{\"run\":1}", 1_100), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", "v1=00", b"", 1_000), Err(SignatureError::Malformed));
    }

    #[test]
    fn codes_round_trip() {
        for (state, code) in CiState::ALL.into_iter().zip(CiState::CODES) {
            assert_eq!(state.code(), code);
            assert_eq!(CiState::parse(code), Some(state));
        }
        assert_eq!(CiState::parse("PASSED"), None);
    }

    #[test]
    fn runs_start_then_finish_once() {
        let running = CiState::Pending.apply(CiStep::Start).unwrap();
        assert_eq!(running, CiState::Running);
        assert_eq!(running.apply(CiStep::Start), Ok(CiState::Running));
        assert_eq!(running.apply(CiStep::Finish(CiState::Passed)), Ok(CiState::Passed));
        assert!(running.apply(CiStep::Finish(CiState::Pending)).is_err());
        assert!(CiState::Passed.apply(CiStep::Start).is_err());
        assert!(CiState::Failed.apply(CiStep::Finish(CiState::Passed)).is_err());
        assert!(CiState::Pending.apply(CiStep::Finish(CiState::Passed)).is_err());
    }

    #[test]
    fn line_names_make_safe_branches() {
        for good in ["main", "release-1.x", "1.8", "stable/2.x", "v2_lts"] {
            assert!(check_line_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a..b", "a b", "a/", "/a", ".hidden", "a.lock", "x~1", "a:b", "a\\b", "@", "a//b", "a/.b"]
        {
            assert!(check_line_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(fix_ref("release-1.x"), "refs/heads/fix/release-1.x");
    }

    #[test]
    fn only_passed_or_overridden_affected_lines_are_ready() {
        let line = |line, affected, ci, overridden| LineCheck { line, affected, ci, overridden };
        let lines = [
            line("main", true, Some(CiState::Passed), false),
            line("1.x", true, Some(CiState::Failed), false),
            line("2.x", true, None, false),
            line("3.x", true, Some(CiState::TimedOut), true),
            line("0.x", false, Some(CiState::Failed), false),
            line("4.x", true, Some(CiState::Running), false),
        ];
        let blocked: Vec<String> = blockers(&lines).into_iter().map(|b| b.to_string()).collect();
        assert_eq!(blocked, ["1.x: CI failed", "2.x: no CI run on its head", "4.x: CI running"]);
        assert!(blockers(&lines[..1]).is_empty());
    }
}
