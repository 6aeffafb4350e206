//! People who use the API: their roles, and the audit trail of what they looked at.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and acts on their own vehicles only.
    Owner,
    /// Sees alerts; queries vehicles (stating a purpose).
    Officer,
    /// An officer who also dispatches others.
    Dispatcher,
    /// Manages stations, vehicles and users; reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Officer => "officer",
            Role::Dispatcher => "dispatcher",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Role::Owner),
            "officer" => Some(Role::Officer),
            "dispatcher" => Some(Role::Dispatcher),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Police roles: may see every alert and query any vehicle (with a purpose).
    pub fn is_police(self) -> bool {
        matches!(self, Role::Officer | Role::Dispatcher | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user account's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// A user account. The password is kept only as an argon2 PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// One line of the audit log: who did what to which target, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub role: Role,
    pub action: String,
    pub target: String,
    pub purpose: String,
}
