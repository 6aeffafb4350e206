//! The police response to alerts: what was decided about each, and the patrol units that can be
//! sent.

use crate::GeoPoint;
use serde::Serialize;

/// What an officer did about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A true hit: the vehicle is being pursued.
    Accepted,
    /// A false hit (a cloned or misread tag, the owner driving it, ...).
    Rejected,
    /// A patrol unit was sent.
    Dispatched,
}

impl ActionKind {
    pub const ALL: [ActionKind; 3] = [Self::Accepted, Self::Rejected, Self::Dispatched];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Dispatched => "dispatched",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of an alert's response history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertAction {
    pub id: i64,
    pub alert_seq: i64,
    pub action: ActionKind,
    /// The unit sent, for a dispatch.
    pub unit: Option<String>,
    pub reason: String,
    pub actor: String,
    pub at_ms: i64,
}

/// A patrol unit and where it last said it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatrolUnit {
    /// Call sign.
    pub unit: String,
    /// The account that last reported for it.
    pub officer: String,
    pub position: GeoPoint,
    /// Free to take a job.
    pub available: bool,
    pub reported_at_ms: i64,
}
