//! # Who is calling: bearer tokens, accounts, roles and passwords.
//!
//! A token is either the configured admin token or one issued at login. Issued tokens are random
//! (32 bytes), kept in the store only as their SHA-256, expire after [`TOKEN_TTL_MS`], and can be
//! revoked. Passwords are kept as argon2id PHC strings; hashing runs off the async threads.

use crate::error::ApiError;
use crate::ApiState;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tagwatch_model::{Role, UserId};

/// How long an issued token stays valid: a patrol shift and then some.
pub const TOKEN_TTL_MS: i64 = 12 * 3_600_000;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` for the configured admin token, which belongs to no account.
    pub user: Option<UserId>,
    pub username: String,
    pub role: Role,
    /// SHA-256 of the token used, so that logout can revoke exactly it.
    pub token_hash: [u8; 32],
}

impl Caller {
    /// Refuses the request unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} may not do this (needs {})",
                self.role,
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh random token (64 hex characters).
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Middleware: resolves the bearer token to a [`Caller`] (401 otherwise).
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let hash = token_hash(token);
    let caller = if state.admin_token.matches(token) {
        Caller {
            user: None,
            username: "admin".into(),
            role: Role::Admin,
            token_hash: hash,
        }
    } else {
        let now = tagwatch_model::time::now_ms();
        let user = state
            .store
            .token_user(&hash, now)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Caller {
            user: Some(user.id),
            username: user.username,
            role: user.role,
            token_hash: hash,
        }
    };
    state.limits.call(&hash)?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// Hashes a password with argon2id and a random salt.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Checks a password against a stored PHC string (in constant time, off the async threads).
pub async fn verify_password(password: String, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}
