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
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The name the configured admin token acts under in the audit log and the logs. Usernames are
/// letters, digits and `._-@`, so no account can be confused with it.
pub const ADMIN_TOKEN_ACTOR: &str = "(admin token)";

/// Middleware: resolves the bearer token to a [`Caller`] (401 otherwise). Requests without a
/// valid token count against their source address's allowance, as logins do.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let source = crate::listener::source(request.extensions().get());
    let refused = |state: &ApiState| -> Result<Response, ApiError> {
        state.limits.unauthenticated(source)?;
        Err(ApiError::Unauthorized)
    };
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return refused(&state);
    };
    let hash = token_hash(token);
    let caller = if state.admin_token.matches(token) {
        Caller {
            user: None,
            username: ADMIN_TOKEN_ACTOR.into(),
            role: Role::Admin,
            token_hash: hash,
        }
    } else {
        let now = tagwatch_model::time::now_ms();
        let Some(user) = state.store.token_user(&hash, now).await? else {
            return refused(&state);
        };
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

/// Password hashes computed at once. Each argon2id hash takes 19 MiB and a core for tens of
/// milliseconds: unbounded, 200 parallel logins took the server from 1.1 to 4.6 GiB. Two at a
/// time keeps memory flat (under 40 MiB for hashing) and leaves the machine's cores to the rest.
pub const HASHES_AT_ONCE: usize = 2;
/// Logins that may wait for a hashing slot; past this they are told to retry.
pub const HASHES_WAITING: usize = 32;
/// Longest a login waits for a hashing slot.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHES_AT_ONCE);
static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// The most hashes ever computed at once (for tests and `/metrics`-style checks).
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The most password hashes this process has computed at once.
pub fn peak_hashes_at_once() -> usize {
    PEAK.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs `work` (a password hash or verification) on a blocking thread once one of the
/// [`HASHES_AT_ONCE`] slots is free; 429 when too many wait already or the wait is too long.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    use std::sync::atomic::Ordering;
    let busy = || ApiError::TooManyRequests(std::time::Duration::from_secs(1));
    if WAITING.fetch_add(1, Ordering::AcqRel) >= HASHES_WAITING {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        return Err(busy());
    }
    let permit = tokio::time::timeout(HASH_WAIT, HASHING.acquire()).await;
    WAITING.fetch_sub(1, Ordering::AcqRel);
    let Ok(Ok(permit)) = permit else {
        return Err(busy());
    };
    let running = HASHES_AT_ONCE - HASHING.available_permits();
    PEAK.fetch_max(running, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::oneshot::channel();
    hashers()
        .send(Box::new(move || {
            let _ = tx.send(work());
        }))
        .map_err(|_| ApiError::internal("the password hashing threads are gone"))?;
    let done = rx.await;
    drop(permit);
    done.map_err(|_| ApiError::internal("a password hash failed"))
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The threads that hash passwords: always the same [`HASHES_AT_ONCE`] of them. On the runtime's
/// blocking pool each hash could land on a new thread, and glibc gives each thread its own heap
/// arena that keeps the 19 MiB a hash took: a login flood grew the server by ~20 MiB a thread
/// (400 MiB with 44 hashes, however few at once). Two threads keep it to two arenas.
fn hashers() -> &'static std::sync::mpsc::Sender<HashJob> {
    static HASHERS: std::sync::OnceLock<std::sync::mpsc::Sender<HashJob>> =
        std::sync::OnceLock::new();
    HASHERS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for n in 0..HASHES_AT_ONCE {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        tx
    })
}

/// Hashes a password with argon2id and a random salt.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
    })
    .await?
}

/// Checks a password against a stored PHC string (in constant time, off the async threads).
pub async fn verify_password(password: String, phc: String) -> Result<bool, ApiError> {
    hashing(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn password_hashing_is_bounded_however_many_ask() {
        let phc = hash_password("correct horse".into()).await.expect("hash");
        let tries: Vec<_> = (0..24)
            .map(|i| tokio::spawn(verify_password(format!("guess {i}"), phc.clone())))
            .collect();
        for task in tries {
            assert!(!task.await.expect("joins").expect("verifies in time"));
        }
        assert!(peak_hashes_at_once() >= 1);
        assert!(
            peak_hashes_at_once() <= HASHES_AT_ONCE,
            "{} at once",
            peak_hashes_at_once()
        );
    }
}
