//! # Accounts: login and logout, user management, "me", and reading the audit log.

use crate::auth::{self, Caller, TOKEN_TTL_MS};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::Role;

/// Shortest password accepted for a new account.
const MIN_PASSWORD: usize = 10;
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

/// `POST /api/v1/login` (no token needed): a password for a token.
pub async fn login(
    State(state): State<ApiState>,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(login) = body?;
    state.limits.login(login.username.trim())?;
    let user = state.store.user_by_name(login.username.trim()).await?;
    let phc = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
    let valid = auth::verify_password(login.password, phc).await?;
    let Some(user) = user.filter(|_| valid) else {
        tracing::info!("failed login");
        return Err(ApiError::BadLogin);
    };
    let token = auth::new_token()?;
    let now = now_ms();
    let expires = now + TOKEN_TTL_MS;
    state
        .store
        .insert_token(&auth::token_hash(&token), user.id, now, expires)
        .await?;
    tracing::info!(user = %user.username, role = %user.role, "login");
    Ok(Json(json!({
        "token": token,
        "username": user.username,
        "role": user.role,
        "expires_at": to_rfc3339(expires),
    })))
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
    if new.password.chars().count() < MIN_PASSWORD || new.password.len() > 1024 {
        return Err(ApiError::field(
            "password",
            format!("password must be {MIN_PASSWORD} to 1024 characters"),
        ));
    }
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
        Json(json!({ "id": id.0, "username": username, "role": role })),
    ))
}

/// `POST /api/v1/users/{username}/revoke` (admin): ends every session of a user at once.
pub async fn revoke_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin])?;
    let user = state
        .store
        .user_by_name(&username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {username:?}")))?;
    let revoked = state.store.revoke_tokens_of(user.id, now_ms()).await?;
    tracing::info!(user = %username, revoked, by = %caller.username, "tokens revoked");
    Ok(Json(json!({ "username": username, "revoked": revoked })))
}

/// `GET /api/v1/me`
pub async fn me(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({ "username": caller.username, "role": caller.role }))
}

/// `GET /api/v1/me/vehicles` (owner): the caller's own vehicles.
pub async fn my_vehicles(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Owner])?;
    let owner = caller
        .user
        .ok_or_else(|| ApiError::Forbidden("no account behind this token".into()))?;
    let vehicles = state.store.vehicles_of(owner).await?;
    Ok(Json(json!({
        "vehicles": vehicles.iter().map(|v| json!({
            "tag": v.tag.0, "plate": v.plate,
            "owner_name": v.owner_name, "owner_phone": v.owner_phone,
        })).collect::<Vec<_>>()
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit?after=&limit=` (admin): the audit log, oldest first.
pub async fn audit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Query(query) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be 1..={MAX_AUDIT_PAGE}"),
        ));
    }
    let entries = state
        .store
        .audit_after(query.after.unwrap_or(0), limit)
        .await?;
    Ok(Json(json!({
        "entries": entries.iter().map(|e| json!({
            "id": e.id, "at": to_rfc3339(e.at_ms), "actor": e.actor, "role": e.role,
            "action": e.action, "target": e.target, "purpose": e.purpose,
        })).collect::<Vec<_>>()
    })))
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
