//! # Accounts: login and logout, user management, "me", and reading the audit log.

use crate::answers::{
    AccountAnswer, AccountChange, AuditAnswer, AuditLine, LoginAnswer, MyVehicle, MyVehicles,
    VehicleAnswer,
};
use crate::auth::{self, Caller, TOKEN_TTL_MS};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::net::SocketAddr;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::Role;

/// Shortest password accepted for a new account.
const MIN_PASSWORD: usize = 10;
/// Longest password accepted (bytes).
const MAX_PASSWORD: usize = 1024;
/// Most audit entries in one answer.
const MAX_AUDIT_PAGE: u32 = 1_000;

/// A syntactically valid argon2id hash of nothing anyone knows: verifying against it for an
/// unknown username costs as much as for a known one, so response times do not reveal which
/// usernames exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1RZ3BwqNz3S0jZ8B0cjzTQ5uYd8xUjTnJYt9r2pS3vE";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// The caller's address as the listener saw it.
pub type Source = Option<Extension<ConnectInfo<SocketAddr>>>;

/// `POST /api/v1/login` (no token needed): a password for a token.
pub async fn login(
    State(state): State<ApiState>,
    source: Source,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let Json(login) = body?;
    let source = crate::listener::source(source.as_ref().map(|s| &s.0));
    // Only a bounded username and password are worth hashing.
    if login.username.len() > 64 || login.password.len() > MAX_PASSWORD {
        state.limits.unauthenticated(source)?;
        return Err(ApiError::BadLogin);
    }
    state.limits.login(login.username.trim(), source)?;
    let user = state.store.user_by_name(login.username.trim()).await?;
    let phc = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
    let valid = auth::verify_password(login.password, phc).await?;
    let Some(user) = user.filter(|_| valid) else {
        tracing::info!(%source, "failed login");
        return Err(ApiError::BadLogin);
    };
    // Said only to someone who knows the password: it tells them to see an administrator.
    if state.store.is_disabled(user.id).await? {
        return Err(ApiError::Forbidden(
            "this account is disabled; an administrator can enable it".into(),
        ));
    }
    let token = auth::new_token()?;
    let now = now_ms();
    let expires = now + TOKEN_TTL_MS;
    state
        .store
        .insert_token(&auth::token_hash(&token), user.id, now, expires)
        .await?;
    tracing::info!(user = %user.username, role = %user.role, "login");
    Ok(Json(LoginAnswer {
        token,
        username: user.username,
        role: user.role.to_string(),
        expires_at: to_rfc3339(expires),
    }))
}

/// `POST /api/v1/logout`: revokes the token used.
pub async fn logout(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    if caller.user.is_none() {
        return Err(ApiError::field(
            "Authorization",
            "the configured admin token cannot be logged out; change it in the configuration",
        ));
    }
    state
        .store
        .revoke_token(&caller.token_hash, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: String,
}

/// `POST /api/v1/users` (admin).
pub async fn create_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let username = new.username.trim().to_owned();
    let valid_name = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !valid_name {
        return Err(ApiError::field(
            "username",
            "username must be 3 to 64 characters: letters, digits, . _ - @",
        ));
    }
    check_password("password", &new.password)?;
    let role = Role::parse(&new.role).ok_or_else(|| {
        ApiError::field("role", "role must be owner, officer, dispatcher or admin")
    })?;
    let hash = auth::hash_password(new.password).await?;
    let id = state
        .store
        .insert_user(&username, &hash, role, now_ms())
        .await?;
    tracing::info!(user = %username, %role, by = %caller.username, "user created");
    Ok((
        StatusCode::CREATED,
        Json(AccountAnswer {
            id: Some(id.0),
            username,
            role: role.to_string(),
        }),
    ))
}

/// `POST /api/v1/users/{username}/revoke` (admin): ends every session of a user at once.
pub async fn revoke_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> Result<Json<AccountChange>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = account(&state, &username).await?;
    let revoked = state.store.revoke_tokens_of(user.id, now_ms()).await?;
    tracing::info!(user = %username, revoked, by = %caller.username, "tokens revoked");
    Ok(Json(AccountChange {
        username,
        disabled: None,
        revoked,
    }))
}

/// A new password long enough to resist guessing, and short enough to hash.
fn check_password(field: &'static str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(ApiError::field(
            field,
            format!("{field} must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// The account named in the path (404 if there is none).
async fn account(state: &ApiState, username: &str) -> Result<tagwatch_model::User, ApiError> {
    state
        .store
        .user_by_name(username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {username:?}")))
}

/// `POST /api/v1/users/{username}/disable` (admin): the account's tokens stop working at once
/// (its live alert streams end within seconds) and it cannot log in until enabled again.
pub async fn disable_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> Result<Json<AccountChange>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = account(&state, &username).await?;
    if caller.user == Some(user.id) {
        return Err(ApiError::Conflict(
            "an administrator cannot disable their own account".into(),
        ));
    }
    let now = now_ms();
    state.store.set_disabled(user.id, Some(now)).await?;
    let revoked = state.store.revoke_tokens_of(user.id, now).await?;
    tracing::info!(user = %username, revoked, by = %caller.username, "account disabled");
    Ok(Json(AccountChange {
        username,
        disabled: Some(true),
        revoked,
    }))
}

/// `POST /api/v1/users/{username}/enable` (admin).
pub async fn enable_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> Result<Json<AccountChange>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = account(&state, &username).await?;
    state.store.set_disabled(user.id, None).await?;
    tracing::info!(user = %username, by = %caller.username, "account enabled");
    Ok(Json(AccountChange {
        username,
        disabled: Some(false),
        revoked: 0,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// `POST /api/v1/users/{username}/password` `{"password"}` (admin): sets a new password and
/// ends every session of the account.
pub async fn reset_password(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Result<Json<AccountChange>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    check_password("password", &new.password)?;
    let user = account(&state, &username).await?;
    let hash = auth::hash_password(new.password).await?;
    state.store.set_password_hash(user.id, &hash).await?;
    let revoked = state.store.revoke_tokens_of(user.id, now_ms()).await?;
    tracing::info!(user = %username, revoked, by = %caller.username, "password reset");
    Ok(Json(AccountChange {
        username,
        disabled: None,
        revoked,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

/// `POST /api/v1/me/password` `{"current", "new"}`: the caller changes their own password; their
/// other sessions end, the token used stays valid.
pub async fn change_password(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(change) = body?;
    let Some(id) = caller.user else {
        return Err(ApiError::field(
            "Authorization",
            "the configured admin token has no password; change it in the configuration",
        ));
    };
    check_password("new", &change.new)?;
    let user = state
        .store
        .user_by_name(&caller.username)
        .await?
        .filter(|u| u.id == id)
        .ok_or(ApiError::Unauthorized)?;
    if change.current.len() > MAX_PASSWORD
        || !auth::verify_password(change.current, user.password_hash).await?
    {
        return Err(ApiError::field("current", "the current password is wrong"));
    }
    let hash = auth::hash_password(change.new).await?;
    state.store.set_password_hash(id, &hash).await?;
    let revoked = state
        .store
        .revoke_other_tokens(id, &caller.token_hash, now_ms())
        .await?;
    tracing::info!(user = %caller.username, revoked, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`
pub async fn me(Extension(caller): Extension<Caller>) -> Json<AccountAnswer> {
    Json(AccountAnswer {
        id: None,
        username: caller.username,
        role: caller.role.to_string(),
    })
}

/// `GET /api/v1/me/vehicles` (owner): the caller's own vehicles.
pub async fn my_vehicles(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<MyVehicles>, ApiError> {
    caller.require(&[Role::Owner])?;
    let owner = caller
        .user
        .ok_or_else(|| ApiError::Forbidden("no account behind this token".into()))?;
    let mut mine = Vec::new();
    for vehicle in state.store.vehicles_of(owner).await? {
        let armed_at = state.store.armed_at(vehicle.tag).await?;
        let stolen = state.store.open_case_of(vehicle.tag).await?.is_some();
        mine.push(MyVehicle {
            vehicle: VehicleAnswer::of(vehicle, None),
            armed_at: armed_at.map(tagwatch_model::time::to_rfc3339),
            stolen,
        });
    }
    Ok(Json(MyVehicles { vehicles: mine }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
    /// Only this actor's entries.
    actor: Option<String>,
    /// Only entries about this vehicle.
    tag: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries before this time (RFC 3339).
    to: Option<String>,
}

/// `GET /api/v1/audit?after=&limit=&actor=&tag=&from=&to=` (admin): the audit log, oldest
/// first, filtered by who, which vehicle and when.
pub async fn audit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditAnswer>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Query(query) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be 1..={MAX_AUDIT_PAGE}"),
        ));
    }
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after", "after must be 0 or more"));
    }
    let filter = tagwatch_store::AuditFilter {
        after,
        actor: query.actor,
        target: query
            .tag
            .as_deref()
            .map(crate::input::tag_from_path)
            .transpose()?
            .map(|tag| format!("tag:{tag}")),
        from_ms: crate::input::time_param("from", query.from.as_deref())?,
        to_ms: crate::input::time_param("to", query.to.as_deref())?,
    };
    let entries = state.store.audit(&filter, limit).await?;
    Ok(Json(AuditAnswer {
        entries: entries
            .into_iter()
            .map(|e| AuditLine {
                id: e.id,
                at: to_rfc3339(e.at_ms),
                actor: e.actor,
                role: e.role.to_string(),
                action: e.action,
                target: e.target,
                purpose: e.purpose,
                outcome: e.outcome,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_dummy_hash_costs_a_real_verification() {
        // If it did not parse, an unknown username would be answered faster than a known one.
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!auth::verify_password("guess".into(), DUMMY_HASH.into())
            .await
            .expect("verifies"));
        let phc = auth::hash_password("correct horse".into())
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(auth::verify_password("correct horse".into(), phc.clone())
            .await
            .expect("ok"));
        assert!(!auth::verify_password("wrong horse".into(), phc)
            .await
            .expect("ok"));
    }
}
