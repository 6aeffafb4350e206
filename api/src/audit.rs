//! # The audit log's side of a query: who may see a vehicle, and every query of movements (and
//! every refusal of one) written to the log, with its purpose, before it is answered.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::Query;
use serde::Deserialize;
use tagwatch_model::time::now_ms;
use tagwatch_model::{AuditEntry, Role, TagId};

/// A vehicle the caller may act on: any for police, their own for an owner. An owner asking
/// for someone else's vehicle learns nothing, not even that it exists: the answer is the one
/// for a tag nobody registered, word for word.
pub(crate) async fn accessible_vehicle(
    state: &ApiState,
    caller: &Caller,
    tag: TagId,
) -> Result<(), ApiError> {
    let owner = state.store.vehicle_owner(tag).await?;
    match (owner, caller.role) {
        (Some(_), role) if role.is_police() => Ok(()),
        (Some(Some(owner)), Role::Owner) if caller.user == Some(owner) => Ok(()),
        _ => Err(ApiError::NotFound(format!("no vehicle with tag {tag}"))),
    }
}

/// The purpose as it may be written to the log: printable, at most [`tagwatch_model::MAX_PURPOSE_CHARS`] characters.
fn loggable(purpose: Option<&str>) -> String {
    purpose
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(tagwatch_model::MAX_PURPOSE_CHARS)
        .collect()
}

/// Every query of a vehicle's movements states why and is written to the audit log before it
/// is answered (if the log cannot be written, nothing is answered). A refused one is written
/// too, with why it was refused: no such vehicle (or not the owner's), or no real purpose.
/// Owners looking at their own vehicle are logged, with that as the purpose.
pub(crate) async fn audit_movements(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    tag: TagId,
    purpose: Option<&str>,
) -> Result<(), ApiError> {
    let target = format!("tag:{tag}");
    if let Err(refused) = accessible_vehicle(state, caller, tag).await {
        return Err(audit_refusal(state, caller, action, target, purpose, refused).await);
    }
    audit(state, caller, action, target, purpose).await
}

/// Refuses a movement query unless the caller is police, writing the refusal to the audit log.
pub(crate) async fn require_police(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    purpose: Option<&str>,
) -> Result<(), ApiError> {
    match caller.require(&[Role::Officer, Role::Dispatcher, Role::Admin]) {
        Ok(()) => Ok(()),
        Err(refused) => {
            Err(audit_refusal(state, caller, action, "area".into(), purpose, refused).await)
        }
    }
}

/// A movement query's parameters, checked: when they are invalid, the refusal is written to the
/// audit log (naming the field) before it is answered, like every other refusal.
pub(crate) async fn checked_params<T>(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    purpose: Option<&str>,
    params: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match params {
        Ok(params) => Ok(params),
        Err(refused) => Err(audit_refusal(state, caller, action, target, purpose, refused).await),
    }
}

/// A movement query's parameters as sent: when they cannot be read at all (`lat=abc`), the
/// refusal is written to the audit log with the purpose the query states, if any can be read.
pub(crate) async fn movement_query<T>(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    uri: &axum::http::Uri,
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    match query {
        Ok(Query(query)) => Ok(query),
        Err(rejection) => {
            // Only the purpose, whatever else the query holds.
            #[derive(Deserialize)]
            struct Stated {
                purpose: Option<String>,
            }
            let stated = Query::<Stated>::try_from_uri(uri).ok();
            let purpose = stated.and_then(|Query(q)| q.purpose);
            let refused = ApiError::BadBody(rejection.body_text());
            Err(audit_refusal(state, caller, action, target, purpose.as_deref(), refused).await)
        }
    }
}

/// Writes a refused query to the audit log and gives back the error to answer with.
pub(crate) async fn audit_refusal(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    purpose: Option<&str>,
    refused: ApiError,
) -> ApiError {
    let outcome = format!("refused: {}", refused.code());
    let entry = audit_entry(caller, action, target, loggable(purpose), outcome);
    match state.audit.append(entry).await {
        Ok(()) => refused,
        // Nothing is answered that the log could not record, refusals included.
        Err(error) => ApiError::internal(error),
    }
}

fn audit_entry(
    caller: &Caller,
    action: &str,
    target: String,
    purpose: String,
    outcome: String,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        at_ms: now_ms(),
        actor: caller.username.clone(),
        role: caller.role,
        action: action.to_owned(),
        target,
        purpose,
        outcome,
    }
}

/// Writes an audit entry for a query of movements (a vehicle's, or everyone's in an area); a
/// query without a real purpose is refused, and that refusal written.
pub(crate) async fn audit(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    purpose: Option<&str>,
) -> Result<(), ApiError> {
    let purpose = match (caller.role, purpose) {
        (Role::Owner, _) => "owner viewing their own vehicle".to_owned(),
        (_, Some(p)) if tagwatch_model::purpose_says_something(p) => p.trim().to_owned(),
        _ => {
            let refused = ApiError::field(
                "purpose",
                "state the purpose of this query: a case number or a reason, 3 to 200 characters \
                 with at least three letters or digits",
            );
            return Err(audit_refusal(state, caller, action, target, purpose, refused).await);
        }
    };
    let entry = audit_entry(caller, action, target, purpose, "answered".into());
    state.audit.append(entry).await.map_err(ApiError::internal)
}
