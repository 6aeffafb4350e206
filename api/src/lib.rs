//! # TagWatch HTTP API
//!
//! The officers' and administrators' side of the pipeline: provisioning (stations, vehicles),
//! theft reports, locations and tracks from the store, and the live alert stream from the
//! ingest's [`AlertBus`].
//!
//! ## Layout
//! - [`app`] builds the router (routes + auth + body limit); `main` only binds and serves.
//! - [`auth`]: bearer tokens → a caller with a role; passwords. [`accounts`]: login, users,
//!   the audit log.
//! - [`routes`]: one handler per endpoint, validating every field with a 4xx that names it
//!   ([`input`]) and writing every query of movements to the audit log first ([`audit`]).
//! - [`sse`]: `GET /api/v1/alerts/stream`, resumable with `Last-Event-ID`.
//! - [`error`]: the one JSON error shape.

pub mod accounts;
pub mod admin;
pub mod alert_filter;
pub mod answers;
pub mod audit;
pub mod auth;
pub mod error;
pub mod input;
pub mod limits;
pub mod listener;
pub mod openapi;
pub mod response;
pub mod routes;
pub mod spatial;
pub mod sse;
pub mod track;
pub mod watch;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use error::ApiError;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use tagwatch_gateway::StationKeys;
use tagwatch_ingest::{AlertBus, Health};
use tagwatch_store::Store;
use tagwatch_tracker::{Command, Query};
use tokio::sync::mpsc;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A bearer token kept only as its SHA-256, compared in constant time; never printed.
#[derive(Clone)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub(crate) fn matches(&self, token: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Fixed-length fold: no early exit on the first differing byte.
        self.0
            .iter()
            .zip(other)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    pub keys: StationKeys,
    pub tracker: mpsc::Sender<Command>,
    /// Questions answered by the task that owns the tracker.
    pub queries: mpsc::Sender<Query>,
    pub bus: Arc<AlertBus>,
    pub admin_token: TokenHash,
    pub registry: Arc<Registry>,
    pub health: Arc<Health>,
    pub limits: Arc<limits::Limits>,
    /// Map tile URL template for the web page; `None`: a plain background.
    pub tile_url: Option<String>,
    /// Days of visits kept; the hourly maintenance reads it, admins change it.
    pub retention_days: Arc<AtomicU32>,
}

/// Asks the task that owns the tracker a question, and waits for the answer.
pub(crate) async fn ask_tracker<T: Send + 'static>(
    state: &ApiState,
    question: impl FnOnce(&tagwatch_tracker::Tracker) -> T + Send + 'static,
) -> Result<T, error::ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ask = move |tracker: &tagwatch_tracker::Tracker| {
        let _ = tx.send(question(tracker));
    };
    state
        .queries
        .send(Query(Box::new(ask)))
        .await
        .map_err(|_| error::ApiError::Unavailable)?;
    rx.await.map_err(|_| error::ApiError::Unavailable)
}

/// Middleware: every request body of this API arrives in time (see [`listener::BodyDeadline`])
/// and is a JSON object (or empty). serde would read a
/// struct from an array as well (`[null, null]` opened a theft case), so a body that is not an
/// object is refused before any handler sees it.
async fn objects_only(
    request: axum::extract::Request,
    next: middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let bytes = match parts.extensions.get::<listener::BodyDeadline>() {
        Some(deadline) => tokio::time::timeout_at(deadline.0, read)
            .await
            .map_err(|_| ApiError::SlowBody)?,
        None => read.await,
    }
    .map_err(|_| ApiError::TooLarge)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(ApiError::BadBody(
            "the request body must be a JSON object".into(),
        ));
    }
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    Ok(next.run(request).await)
}

/// A known path asked with a method it does not take: the JSON error, like every other.
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// The whole router.
pub fn app(state: ApiState) -> Router {
    let api = Router::new()
        .route("/logout", post(accounts::logout))
        .route("/me", get(accounts::me))
        .route("/me/vehicles", get(accounts::my_vehicles))
        .route("/users", post(accounts::create_user).get(admin::users))
        .route(
            "/settings/retention",
            get(admin::retention).put(admin::set_retention),
        )
        .route("/users/{username}/revoke", post(accounts::revoke_user))
        .route("/users/{username}/disable", post(accounts::disable_user))
        .route("/users/{username}/enable", post(accounts::enable_user))
        .route("/users/{username}/password", post(accounts::reset_password))
        .route("/me/password", post(accounts::change_password))
        .route("/audit", get(accounts::audit))
        .route(
            "/stations",
            post(routes::create_station).get(routes::list_stations),
        )
        .route(
            "/vehicles",
            post(routes::create_vehicle).get(admin::vehicles),
        )
        .route("/vehicles/{tag}/theft", post(routes::report_theft))
        .route("/vehicles/{tag}/recovered", post(routes::recovered))
        .route("/vehicles/{tag}/arm", post(routes::arm))
        .route("/vehicles/{tag}/disarm", post(routes::disarm))
        .route("/alerts", get(routes::list_alerts))
        .route("/alerts/{seq}", get(response::alert))
        .route("/alerts/{seq}/accept", post(response::accept))
        .route("/alerts/{seq}/reject", post(response::reject))
        .route("/alerts/{seq}/dispatch", post(response::dispatch))
        .route("/patrol/position", post(response::report_position))
        .route("/patrol/units", get(response::units))
        .route("/tags/near", get(spatial::tags_near))
        .route("/tags/through", get(spatial::tags_through))
        .route("/vehicles/{tag}/location", get(routes::location))
        .route("/vehicles/{tag}/track", get(track::track))
        .route("/vehicles/{tag}/companions", get(spatial::travelling_with))
        .route("/dens", get(spatial::dens))
        .route(
            "/geofences",
            post(watch::create_geofence).get(watch::list_geofences),
        )
        .route("/geofences/{id}", delete(watch::delete_geofence))
        .route(
            "/precincts",
            post(alert_filter::create_precinct).get(alert_filter::precincts),
        )
        .route(
            "/vehicles/{tag}/pair",
            get(watch::get_pair).put(watch::pair).delete(watch::unpair),
        )
        .route("/alerts/stream", get(sse::stream))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Login and this API's description are the calls without a token.
        .route("/login", post(accounts::login))
        .route("/openapi.json", get(openapi::serve))
        .layer(middleware::from_fn(objects_only))
        .method_not_allowed_fallback(method_not_allowed);
    let mut router = Router::new();
    for path in web::paths() {
        let page = web::asset(path);
        router = router.route(path, get(move || async move { page }));
    }
    router
        .route("/config.json", get(web::config))
        .nest("/api/v1", api)
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
