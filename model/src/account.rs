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
    /// `answered`, or why the query was refused (`refused: ...`).
    pub outcome: String,
}

/// Longest purpose a movement query may state, in characters.
pub const MAX_PURPOSE_CHARS: usize = 200;

/// Whether a stated purpose says something: 3 to 200 characters, at least three of them
/// letters or digits (any script), no control or invisible characters, and not one character
/// repeated (`xxx`, `000`). A case number (`C-2026-114`) or a reason in any language passes.
pub fn purpose_says_something(purpose: &str) -> bool {
    let p = purpose.trim();
    let chars = p.chars().count();
    let meaningful = p.chars().filter(|c| c.is_alphanumeric()).count();
    let invisible = p.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{00AD}')
    });
    let mut distinct = p
        .chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_lowercase().to_string());
    let first = distinct.next();
    let one_repeated = distinct.all(|c| Some(&c) == first.as_ref());
    (3..=MAX_PURPOSE_CHARS).contains(&chars) && meaningful >= 3 && !invisible && !one_repeated
}

#[cfg(test)]
mod purpose_tests {
    use super::purpose_says_something;

    #[test]
    fn a_purpose_needs_letters_or_digits_and_no_filler() {
        for good in [
            "case C-2026-114",
            "stop and check",
            "盗窃案114",
            "alert #12",
        ] {
            assert!(purpose_says_something(good), "{good}");
        }
        for filler in [
            "",
            "ab",
            "xxx",
            "000",
            "---",
            "\u{200b}\u{200b}\u{200b}",
            "\0\0\0",
            "a\u{200b}bc",
        ] {
            assert!(!purpose_says_something(filler), "{filler:?}");
        }
        assert!(
            !purpose_says_something(&"case ".repeat(50)),
            "over 200 characters"
        );
    }
}
