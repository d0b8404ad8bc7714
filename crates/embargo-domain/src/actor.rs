//! Who acts: team members, reporters, the system itself and local administrators.

use std::fmt;

use crate::ids::UserId;

/// A team member's role. Partner and fix-developer roles come with their features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sees and manages everything, including accounts.
    Admin,
    /// Works on the reports they are assigned to or added to.
    Responder,
}

impl Role {
    /// The stable text form used in storage, configuration and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Responder => "responder",
        }
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "responder" => Some(Role::Responder),
            _ => None,
        }
    }
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
