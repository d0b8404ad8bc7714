//! Who acts: team members, reporters, the system itself and local administrators.

use std::fmt;

use crate::ids::UserId;

/// A team account's role. What each may do is one column of `access::TABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sees and manages everything, including accounts.
    Admin,
    /// Works on the reports they are assigned to or added to.
    Responder,
    /// Works only in the private fix repository of the advisories given to them.
    FixDeveloper,
    /// A partner organisation's member: reads only what was shared with the organisation.
    Partner,
}

impl Role {
    /// The stable text form used in storage, configuration and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Responder => "responder",
            Role::FixDeveloper => "fix-developer",
            Role::Partner => "partner",
        }
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "responder" => Some(Role::Responder),
            "fix-developer" => Some(Role::FixDeveloper),
            "partner" => Some(Role::Partner),
            _ => None,
        }
    }

    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Responder, Role::FixDeveloper, Role::Partner];

    /// The roles an account can be given today. Fix developers and partners are in the
    /// permission table already; their accounts come with the fix repository and partner
    /// sharing (the database's `users.role` check admits only these until then).
    pub const ASSIGNABLE: [Role; 2] = [Role::Admin, Role::Responder];
}

/// The subject of an action, recorded on every transition and audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A team account.
    User {
        /// The account.
        id: UserId,
        /// Its role at the time of the action.
        role: Role,
    },
    /// The reporter of the report concerned (by mail or through the status link).
    Reporter,
    /// Embargo itself, naming the component (for example `intake` or `sla`).
    System(&'static str),
    /// Someone with direct access to the instance's data directory and database, using the
    /// command line. They can read the database anyway, so they act as an administrator.
    LocalAdmin {
        /// The operating-system user name, as far as it is known.
        os_user: String,
    },
}

impl Actor {
    /// Who acts, regardless of the role they had: `user:7` for an account, otherwise the
    /// same text as [`Display`](fmt::Display). Two actions are by the same person exactly
    /// when their identities are equal (the two-person rule compares these).
    pub fn identity(&self) -> String {
        match self {
            Actor::User { id, .. } => format!("user:{id}"),
            other => other.to_string(),
        }
    }
}

/// The identity ([`Actor::identity`]) of an actor's stored text form (`user:7:admin` is
/// `user:7`; other forms are their own identity).
pub fn identity_of(text: &str) -> String {
    match text.strip_prefix("user:").and_then(|rest| rest.split_once(':')) {
        Some((id, _role)) => format!("user:{id}"),
        None => text.to_owned(),
    }
}

impl fmt::Display for Actor {
    /// The stable text form stored in transitions and the audit chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { id, role } => write!(f, "user:{id}:{}", role.as_str()),
            Actor::Reporter => f.write_str("reporter"),
            Actor::System(component) => write!(f, "system:{component}"),
            Actor::LocalAdmin { os_user } => write!(f, "cli:{os_user}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("fix_developer"), None);
        assert!(Role::ASSIGNABLE.iter().all(|r| Role::ALL.contains(r)));
    }

    #[test]
    fn an_identity_ignores_the_role() {
        let admin = Actor::User { id: UserId(7), role: Role::Admin };
        let responder = Actor::User { id: UserId(7), role: Role::Responder };
        assert_eq!(admin.identity(), responder.identity());
        assert_eq!(identity_of(&admin.to_string()), "user:7");
        assert_eq!(identity_of(&responder.to_string()), admin.identity());
        assert_ne!(Actor::User { id: UserId(8), role: Role::Admin }.identity(), admin.identity());
        let local = Actor::LocalAdmin { os_user: "root".into() };
        assert_eq!(identity_of(&local.to_string()), local.identity());
        assert_eq!(identity_of("system:sla"), "system:sla");
    }
}
