//! Early disclosure to partners: the embargo as a state machine, the partner list's embargo
//! policy, the delivery of a pre-notice to each contact, and the reminders.
//!
//! ```text
//!   PROPOSED ──send──► ACTIVE ──revise──► REVISED ──revise──► REVISED
//!      │                 │  │                │  │
//!      │                 │  └──lift──► LIFTED ◄─lift┘
//!      └──break──────────┴──break──► BROKEN ◄──break┘
//! ```
//!
//! (In the spirit of CERT/CC's Vultron embargo model: proposed, active, revised, and two
//! ends.) Every revision of the date is a new notice to every partner; an embargo broken by
//! a leak tells every partner at once and hands over to the disclosure runbook.
//!
//! The policy is checked whenever a date is proposed or revised: the embargo's length (from
//! its first notice to the disclosure), the notice partners get before it, the final notice
//! at least `final_notice` before the instant, and the days and hour the list prefers
//! (weekends and Fridays need an explicit confirmation; other days outside the preference
//! and another hour are warnings). Instants are UTC; the weekday is the UTC one.

use std::fmt;

use jiff::{SignedDuration, Timestamp, civil::Weekday};

/// Where an embargo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbargoState {
    /// A date is proposed; no partner has been told.
    Proposed,
    /// Partners were told the date.
    Active,
    /// The date was moved after partners were told (they were told again).
    Revised,
    /// The date came and the vulnerability was disclosed.
    Lifted,
    /// The embargo ended early (a leak, or disclosure now).
    Broken,
}

impl EmbargoState {
    /// Every state.
    pub const ALL: [EmbargoState; 5] = [
        EmbargoState::Proposed,
        EmbargoState::Active,
        EmbargoState::Revised,
        EmbargoState::Lifted,
        EmbargoState::Broken,
    ];

    /// The stable code (stored, printed).
    pub fn code(self) -> &'static str {
        match self {
            EmbargoState::Proposed => "proposed",
            EmbargoState::Active => "active",
            EmbargoState::Revised => "revised",
            EmbargoState::Lifted => "lifted",
            EmbargoState::Broken => "broken",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether partners hold the date under embargo now.
    pub fn is_in_force(self) -> bool {
        matches!(self, EmbargoState::Active | EmbargoState::Revised)
    }

    /// Whether the embargo is over.
    pub fn is_final(self) -> bool {
        matches!(self, EmbargoState::Lifted | EmbargoState::Broken)
    }

    /// The state after `step`, or why the step is not allowed.
    pub fn apply(self, step: EmbargoStep) -> Result<EmbargoState, EmbargoError> {
        use EmbargoState::*;
        match (self, step) {
            (Proposed, EmbargoStep::Propose) => Ok(Proposed),
            (Proposed, EmbargoStep::Send) => Ok(Active),
            (Active | Revised, EmbargoStep::Revise) => Ok(Revised),
            (Active | Revised, EmbargoStep::Lift) => Ok(Lifted),
            (Proposed | Active | Revised, EmbargoStep::Break) => Ok(Broken),
            (from, step) => Err(EmbargoError::Step { from, step }),
        }
    }
}

impl fmt::Display for EmbargoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A step of an embargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbargoStep {
    /// A (new) date is proposed before anyone was told.
    Propose,
    /// The first notice goes to the partners.
    Send,
    /// The date moves after partners were told; a new notice goes to all.
    Revise,
    /// The date came: the disclosure happened.
    Lift,
    /// The embargo ends now.
    Break,
}

impl fmt::Display for EmbargoStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbargoStep::Propose => "propose a date",
            EmbargoStep::Send => "send the first notice",
            EmbargoStep::Revise => "revise the date",
            EmbargoStep::Lift => "be lifted",
            EmbargoStep::Break => "be broken",
        })
    }
}

/// Why an embargo step or date is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbargoError {
    /// The embargo cannot take this step from where it is.
    #[error("an embargo that is {from} cannot {step}")]
    Step {
        /// Where the embargo is.
        from: EmbargoState,
        /// The step refused.
        step: EmbargoStep,
    },
    /// The date breaks the list's policy.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Policy(Vec<Violation>),
}

/// A partner organisation's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartnerState {
    /// Receives notices.
    Active,
    /// Receives nothing for now (a leak under review, lapsed terms).
    Suspended,
    /// No longer a partner; kept for the record.
    Removed,
}

impl PartnerState {
    /// Every state.
    pub const ALL: [PartnerState; 3] = [PartnerState::Active, PartnerState::Suspended, PartnerState::Removed];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            PartnerState::Active => "active",
            PartnerState::Suspended => "suspended",
            PartnerState::Removed => "removed",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// Where one contact's copy of a notice is. Later states win: a copy seen in the portal is
/// not "sent" again, an acknowledged one stays acknowledged; a bounce only marks a copy
/// that was not seen since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Queued; not sent yet.
    Pending,
    /// Handed to the mail transport.
    Sent,
    /// The mail came back undelivered.
    Bounced,
    /// The contact opened the notice in the portal.
    Seen,
    /// The contact acknowledged the notice and its terms.
    Acknowledged,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Pending,
        DeliveryState::Sent,
        DeliveryState::Bounced,
        DeliveryState::Seen,
        DeliveryState::Acknowledged,
    ];

    /// The stable code (in `notice status --json`).
    pub fn code(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Bounced => "bounced",
            DeliveryState::Seen => "seen",
            DeliveryState::Acknowledged => "acknowledged",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The state after an event, which never goes back: `to` when it is later.
    pub fn advance(self, to: DeliveryState) -> DeliveryState {
        self.max(to)
    }

    /// Whether reminders still go to this contact.
    pub fn awaits_acknowledgement(self) -> bool {
        self != DeliveryState::Acknowledged
    }
}

/// What partners may do before the disclosure (Xen's policy spells these out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// They may deploy the fix to hosted services they run before the date.
    pub deploy_hosted: bool,
    /// They may tell their customers that an issue exists, its ID and its date.
    pub tell_customers: bool,
}

impl Permissions {
    /// The notice's wording of each permission.
    pub fn describe(self) -> [String; 2] {
        let yes_no = |b: bool| if b { "Yes" } else { "No" };
        [
            format!(
                "{}: you may deploy the fix to hosted services you operate before the disclosure.",
                yes_no(self.deploy_hosted)
            ),
            format!(
                "{}: you may tell your customers that an issue exists, its identifier and its disclosure date (no details).",
                yes_no(self.tell_customers)
            ),
        ]
    }
}

/// A partner list's embargo policy. The default is the distros list's: at most 14 days of
/// embargo, at least 7 days' notice, the final notice 24 hours before, Tuesday to Thursday,
/// 16:00 UTC preferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbargoPolicy {
    /// The longest embargo: from the first notice to the disclosure.
    pub max_embargo: SignedDuration,
    /// The least notice partners get before the disclosure (the first notice).
    pub min_notice: SignedDuration,
    /// The final notice (with the exact time) goes at least this long before the instant;
    /// a date revised later than this is refused.
    pub final_notice: SignedDuration,
    /// The days disclosure is preferred on (UTC).
    pub preferred_days: Vec<Weekday>,
    /// The hour (UTC) disclosure is preferred at, if any.
    pub preferred_hour: Option<i8>,
}

impl Default for EmbargoPolicy {
    fn default() -> Self {
        EmbargoPolicy {
            max_embargo: SignedDuration::from_hours(14 * 24),
            min_notice: SignedDuration::from_hours(7 * 24),
            final_notice: SignedDuration::from_hours(24),
            preferred_days: vec![Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday],
            preferred_hour: Some(16),
        }
    }
}

/// A rule of the policy a proposed date breaks; its text is what a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The date is not in the future.
    InThePast {
        /// The date.
        at: Timestamp,
    },
    /// The embargo would last longer than the policy allows.
    TooLong {
        /// How long it would be.
        length: SignedDuration,
        /// The most allowed.
        max: SignedDuration,
        /// The latest allowed instant.
        latest: Timestamp,
    },
    /// Partners would get less notice than the policy asks (a first notice).
    TooShortNotice {
        /// The notice they would get.
        notice: SignedDuration,
        /// The least allowed.
        min: SignedDuration,
        /// The earliest allowed instant.
        earliest: Timestamp,
    },
    /// A revised date leaves no time for the final notice.
    NoFinalNotice {
        /// The notice that would be left.
        left: SignedDuration,
        /// The least needed.
        min: SignedDuration,
    },
    /// A Friday, Saturday or Sunday without an explicit confirmation.
    UnconfirmedDay {
        /// The day.
        day: Weekday,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::InThePast { at } => {
                write!(
                    f,
                    "the disclosure date {} is in the past; choose a future instant",
                    at.strftime("%Y-%m-%d %H:%M UTC")
                )
            }
            Violation::TooLong { length, max, latest } => write!(
                f,
                "the embargo would last {}, longer than the list's maximum of {}; disclose no later than {}",
                human(*length),
                human(*max),
                latest.strftime("%Y-%m-%d %H:%M UTC")
            ),
            Violation::TooShortNotice { notice, min, earliest } => write!(
                f,
                "partners would get {} of notice, less than the list's minimum of {}; disclose no earlier than {}",
                human(*notice),
                human(*min),
                earliest.strftime("%Y-%m-%d %H:%M UTC")
            ),
            Violation::NoFinalNotice { left, min } => write!(
                f,
                "only {} would be left before the disclosure, less than the {} the final notice needs",
                human(*left),
                human(*min)
            ),
            Violation::UnconfirmedDay { day } => write!(
                f,
                "the disclosure falls on a {}, when partners may not be able to react; confirm this day explicitly to keep it",
                weekday_name(*day)
            ),
        }
    }
}

/// Something a person should know about an accepted date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The day is allowed but not one the list prefers.
    NotPreferredDay {
        /// The day.
        day: Weekday,
    },
    /// A weekend day or a Friday, confirmed.
    ConfirmedDay {
        /// The day.
        day: Weekday,
    },
    /// The hour is not the list's preferred hour.
    NotPreferredHour {
        /// The hour of the date (UTC).
        hour: i8,
        /// The preferred hour.
        preferred: i8,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotPreferredDay { day } => {
                write!(f, "{} is not one of the list's preferred disclosure days", weekday_name(*day))
            }
            Warning::ConfirmedDay { day } => {
                write!(f, "disclosing on a {} (confirmed): partners may not be able to react", weekday_name(*day))
            }
            Warning::NotPreferredHour { hour, preferred } => {
                write!(f, "{hour:02}:00 UTC is not the list's preferred hour ({preferred:02}:00 UTC)")
            }
        }
    }
}

/// A date proposed for a disclosure, and what the policy is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Now.
    pub now: Timestamp,
    /// The proposed instant.
    pub disclose_at: Timestamp,
    /// When partners were first told (an embargo in force), if they were.
    pub first_notice_at: Option<Timestamp>,
    /// A person confirmed a Friday, Saturday or Sunday.
    pub confirm_day: bool,
}

impl EmbargoPolicy {
    /// Checks a proposed date: the warnings for a date the policy accepts, or every rule it
    /// breaks.
    pub fn check(&self, proposal: Proposal) -> Result<Vec<Warning>, EmbargoError> {
        let Proposal { now, disclose_at, first_notice_at, confirm_day } = proposal;
        let mut violations = Vec::new();
        if disclose_at <= now {
            violations.push(Violation::InThePast { at: disclose_at });
        } else {
            // The embargo starts at the first notice: now, for a first notice.
            let start = first_notice_at.unwrap_or(now);
            let length = disclose_at.duration_since(start);
            if length > self.max_embargo {
                violations.push(Violation::TooLong {
                    length,
                    max: self.max_embargo,
                    latest: start.checked_add(self.max_embargo).unwrap_or(disclose_at),
                });
            }
            let notice = disclose_at.duration_since(now);
            match first_notice_at {
                None if notice < self.min_notice => violations.push(Violation::TooShortNotice {
                    notice,
                    min: self.min_notice,
                    earliest: now.checked_add(self.min_notice).unwrap_or(disclose_at),
                }),
                Some(_) if notice < self.final_notice => {
                    violations.push(Violation::NoFinalNotice { left: notice, min: self.final_notice });
                }
                _ => {}
            }
        }
        let civil = jiff::tz::TimeZone::UTC.to_datetime(disclose_at);
        let day = civil.weekday();
        let mut warnings = Vec::new();
        let risky = matches!(day, Weekday::Friday | Weekday::Saturday | Weekday::Sunday);
        if risky && !confirm_day {
            violations.push(Violation::UnconfirmedDay { day });
        } else if risky {
            warnings.push(Warning::ConfirmedDay { day });
        } else if !self.preferred_days.is_empty() && !self.preferred_days.contains(&day) {
            warnings.push(Warning::NotPreferredDay { day });
        }
        if let Some(preferred) = self.preferred_hour
            && (civil.hour() != preferred || civil.minute() != 0)
        {
            warnings.push(Warning::NotPreferredHour { hour: civil.hour(), preferred });
        }
        if violations.is_empty() { Ok(warnings) } else { Err(EmbargoError::Policy(violations)) }
    }
}

/// When reminders go to contacts who have not acknowledged a notice sent at `sent_at` for
/// `disclose_at`: a week before, then the final notice `final_notice` before (24 hours by
/// default), each only if it is still ahead when the notice goes.
pub fn reminder_instants(sent_at: Timestamp, disclose_at: Timestamp, final_notice: SignedDuration) -> Vec<Timestamp> {
    [SignedDuration::from_hours(7 * 24), final_notice]
        .into_iter()
        .filter_map(|before| disclose_at.checked_sub(before).ok())
        .filter(|at| *at > sent_at)
        .collect()
}

/// An iCalendar file (RFC 5545) for a disclosure instant. The event holds no detail of the
/// vulnerability (as Vultron advises): only an opaque identifier and the instant.
/// `sequence` grows with every revision of the same event (same `uid`), so that calendars
/// move the event instead of adding a second one.
pub fn disclosure_event(uid: &str, label: &str, disclose_at: Timestamp, stamp: Timestamp, sequence: i64) -> String {
    let fmt = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let clean = |s: &str| {
        s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '@' | ' ')).collect::<String>()
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Embargo//disclosure//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         SEQUENCE:{sequence}\r\nDTSTAMP:{stamp}\r\nDTSTART:{start}\r\nDTEND:{start}\r\nSUMMARY:Coordinated disclosure {label}\r\n\
         TRANSP:TRANSPARENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        uid = clean(uid),
        stamp = fmt(stamp),
        start = fmt(disclose_at),
        label = clean(label),
    )
}

/// A duration as people read it: days and hours, or hours and minutes.
pub fn human(duration: SignedDuration) -> String {
    let minutes = duration.as_secs() / 60;
    let (days, hours, mins) = (minutes / (24 * 60), (minutes / 60) % 24, minutes % 60);
    let plural = |n: i64, what: &str| if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") };
    match (days, hours, mins) {
        (0, 0, m) => plural(m, "minute"),
        (0, h, 0) => plural(h, "hour"),
        (0, h, m) => format!("{} {}", plural(h, "hour"), plural(m, "minute")),
        (d, 0, _) => plural(d, "day"),
        (d, h, _) => format!("{} {}", plural(d, "day"), plural(h, "hour")),
    }
}

/// The English name of a weekday.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// Parses a weekday's English name or its first three letters.
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    let lower = text.trim().to_ascii_lowercase();
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
    .into_iter()
    .find(|d| {
        let name = weekday_name(*d).to_ascii_lowercase();
        lower == name || (lower.len() >= 3 && name.starts_with(&lower))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn proposal(now: &str, at: &str) -> Proposal {
        Proposal { now: t(now), disclose_at: t(at), first_notice_at: None, confirm_day: false }
    }

    #[test]
    fn the_embargo_moves_only_along_its_edges() {
        use EmbargoState::*;
        use EmbargoStep::*;
        assert_eq!(Proposed.apply(Send), Ok(Active));
        assert_eq!(Active.apply(Revise), Ok(Revised));
        assert_eq!(Revised.apply(Revise), Ok(Revised));
        assert_eq!(Revised.apply(Lift), Ok(Lifted));
        assert_eq!(Active.apply(Break), Ok(Broken));
        assert_eq!(Proposed.apply(Break), Ok(Broken));
        for end in [Lifted, Broken] {
            for step in [Propose, Send, Revise, Lift, Break] {
                assert!(end.apply(step).is_err(), "{end} {step}");
            }
        }
        assert!(Proposed.apply(Revise).is_err(), "nobody was told: propose again instead");
        assert!(Proposed.apply(Lift).is_err());
        assert!(Active.apply(Send).is_err());
        assert_eq!(Lifted.apply(Break).unwrap_err().to_string(), "an embargo that is lifted cannot be broken");
        for s in EmbargoState::ALL {
            assert_eq!(EmbargoState::parse(s.code()), Some(s));
        }
    }

    #[test]
    fn the_distros_policy_accepts_seven_to_fourteen_days_on_a_tuesday_at_sixteen() {
        // 2026-12-04 is a Friday; 2026-12-15 a Tuesday.
        let policy = EmbargoPolicy::default();
        assert_eq!(policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-15T16:00:00Z")), Ok(vec![]));
        // Monday: allowed, warned; another hour: warned.
        let warnings = policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-14T09:30:00Z")).unwrap();
        assert_eq!(
            warnings,
            vec![
                Warning::NotPreferredDay { day: Weekday::Monday },
                Warning::NotPreferredHour { hour: 9, preferred: 16 }
            ]
        );
        assert_eq!(warnings[0].to_string(), "Monday is not one of the list's preferred disclosure days");
    }

    #[test]
    fn violations_are_refused_with_what_would_be_allowed() {
        let policy = EmbargoPolicy::default();
        let err = policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-22T16:00:00Z")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the embargo would last 18 days 6 hours, longer than the list's maximum of 14 days; \
             disclose no later than 2026-12-18 10:00 UTC"
        );
        let err = policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-08T16:00:00Z")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partners would get 4 days 6 hours of notice, less than the list's minimum of 7 days; \
             disclose no earlier than 2026-12-11 10:00 UTC"
        );
        let err = policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-01T16:00:00Z")).unwrap_err();
        assert_eq!(err.to_string(), "the disclosure date 2026-12-01 16:00 UTC is in the past; choose a future instant");
        // A Friday 11 days out: allowed by length, refused without a confirmation.
        let friday = proposal("2026-12-04T10:00:00Z", "2026-12-11T16:00:00Z");
        let err = policy.check(friday).unwrap_err();
        assert_eq!(err, EmbargoError::Policy(vec![Violation::UnconfirmedDay { day: Weekday::Friday }]),);
        assert!(err.to_string().contains("falls on a Friday"), "{err}");
        assert_eq!(
            policy.check(Proposal { confirm_day: true, ..friday }),
            Ok(vec![Warning::ConfirmedDay { day: Weekday::Friday }])
        );
        // Several rules at once are all named.
        let err = policy.check(proposal("2026-12-04T10:00:00Z", "2026-12-05T16:00:00Z")).unwrap_err();
        let EmbargoError::Policy(all) = err else { panic!() };
        assert_eq!(all.len(), 2, "{all:?}");
    }

    #[test]
    fn a_revision_counts_the_embargo_from_its_first_notice() {
        let policy = EmbargoPolicy::default();
        let revised = Proposal {
            now: t("2026-12-10T10:00:00Z"),
            disclose_at: t("2026-12-17T16:00:00Z"),
            first_notice_at: Some(t("2026-12-04T10:00:00Z")),
            confirm_day: false,
        };
        // 13 days 6 hours after the first notice: fine, though only 7 days from now.
        assert_eq!(policy.check(revised), Ok(vec![]));
        let too_long = Proposal { disclose_at: t("2026-12-22T16:00:00Z"), ..revised };
        assert!(
            matches!(policy.check(too_long), Err(EmbargoError::Policy(v)) if matches!(v[0], Violation::TooLong { .. }))
        );
        // Less than the final notice's 24 hours left: refused; 2 days: fine (no 7-day rule
        // for a revision, partners already know).
        let late = Proposal { now: t("2026-12-15T20:00:00Z"), disclose_at: t("2026-12-16T16:00:00Z"), ..revised };
        assert!(policy.check(late).unwrap_err().to_string().contains("final notice"));
        let soon = Proposal { now: t("2026-12-14T10:00:00Z"), disclose_at: t("2026-12-16T16:00:00Z"), ..revised };
        assert_eq!(policy.check(soon), Ok(vec![]));
    }

    #[test]
    fn reminders_go_a_week_and_a_day_before_when_still_ahead() {
        let day = SignedDuration::from_hours(24);
        assert_eq!(
            reminder_instants(t("2026-12-01T10:00:00Z"), t("2026-12-15T16:00:00Z"), day),
            vec![t("2026-12-08T16:00:00Z"), t("2026-12-14T16:00:00Z")]
        );
        // Sent six days before: only the final notice.
        assert_eq!(
            reminder_instants(t("2026-12-09T16:00:00Z"), t("2026-12-15T16:00:00Z"), day),
            vec![t("2026-12-14T16:00:00Z")]
        );
    }

    #[test]
    fn delivery_states_never_go_back() {
        use DeliveryState::*;
        assert_eq!(Sent.advance(Seen), Seen);
        assert_eq!(Acknowledged.advance(Seen), Acknowledged);
        assert_eq!(Seen.advance(Bounced), Seen, "a bounce after the portal visit changes nothing");
        assert_eq!(Sent.advance(Bounced), Bounced);
        assert_eq!(Bounced.advance(Acknowledged), Acknowledged);
    }

    #[test]
    fn the_calendar_event_names_no_detail() {
        let ics = disclosure_event(
            "embargo-3@embargo",
            "N-7 <script>",
            t("2026-12-15T16:00:00Z"),
            t("2026-12-04T10:00:00Z"),
            7,
        );
        assert!(ics.contains("UID:embargo-3@embargo\r\nSEQUENCE:7\r\n"), "{ics}");
        assert!(ics.contains("DTSTART:20261215T160000Z\r\n"), "{ics}");
        assert!(ics.contains("SUMMARY:Coordinated disclosure N-7 script\r\n"), "{ics}");
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn weekdays_parse_by_name() {
        assert_eq!(parse_weekday("tue"), Some(Weekday::Tuesday));
        assert_eq!(parse_weekday("Thursday"), Some(Weekday::Thursday));
        assert_eq!(parse_weekday("t"), None);
        assert_eq!(human(SignedDuration::from_hours(24 * 7)), "7 days");
    }
}
