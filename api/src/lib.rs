//! # TagWatch HTTP API
//!
//! The officers' and administrators' side of the pipeline: provisioning (stations, vehicles),
//! theft reports, locations and tracks from the store, and the live alert stream from the
//! ingest's [`AlertBus`].
//!
//! ## Layout
//! - [`app`] builds the router (routes + auth + body limit); `main` only binds and serves.
//! - [`handlers`]: one module per resource (stations, vehicles, thefts, alerts and the live
//!   stream, responses, area and track queries, geofences and pairs, precincts, accounts,
//!   admin, health).
//! - [`input`]: request input checked with a 4xx that names the field; [`audit`]: who may see a
//!   vehicle, and every query of movements written to the audit log first.
//! - [`answers`]: the JSON shapes answered; [`error`]: the one JSON error shape;
//!   [`openapi`]: the document describing it all.
//! - [`auth`]: bearer tokens → a caller with a role; passwords. [`limits`]: rate limits.
//!   [`listener`]: the HTTP listener's own bounds. [`web`]: the officers' map page.
//! - [`live`]: questions about live state, to the tracker in the process or a cluster's shards.

pub mod answers;
pub mod audit;
pub mod audit_writer;
pub mod auth;
pub mod error;
pub mod export;
pub mod handlers;
pub mod hotlist;
pub mod identity;
pub mod input;
pub mod limits;
pub mod listener;
pub mod live;
pub mod openapi;
pub mod web;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post};
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
use tagwatch_tracker::Command;
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
    /// Where questions about live state go: the tracker in this process, or a cluster's shards.
    pub live: live::Live,
    pub bus: Arc<AlertBus>,
    pub admin_token: TokenHash,
    pub registry: Arc<Registry>,
    pub health: Arc<Health>,
    pub limits: Arc<limits::Limits>,
    /// Map tile URL template for the web page; `None`: a plain background.
    pub tile_url: Option<String>,
    /// Roads drawn on the plain background (the demo's simulated city), as `[lat, lon]` pairs.
    pub roads: Arc<Vec<[[f64; 2]; 2]>>,
    /// Days of visits kept; the hourly maintenance reads it, admins change it.
    pub retention_days: Arc<AtomicU32>,
    /// The registered GPS trackers, shared with the device listener.
    pub devices: tagwatch_devices::registry::Registry,
    /// Writes audit entries, those of concurrent queries in one commit.
    pub audit: audit_writer::AuditWriter,
    /// Vehicles' descriptions and the stolen list, as answers name them.
    pub identities: Arc<identity::Identities>,
}

/// Sends the task that owns the tracker a change of its reference data.
pub(crate) async fn tell_tracker(state: &ApiState, command: Command) -> Result<(), ApiError> {
    // Every case opened or closed passes here: answers name the vehicle stolen, or not, at once.
    if matches!(command, Command::Stolen { .. } | Command::Recovered { .. }) {
        state.identities.stolen_changed();
    }
    state
        .tracker
        .send(command)
        .await
        .map_err(|_| ApiError::Unavailable)
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
    // The one body that is a file, not an object: a hotlist upload (CSV), with its own bound.
    // (Inside the nested API router the path has lost its `/api/v1`.)
    let file = matches!(parts.uri.path(), "/hotlist" | "/api/v1/hotlist");
    let limit = if file {
        hotlist::MAX_HOTLIST_BYTES
    } else {
        MAX_BODY_BYTES
    };
    let read = axum::body::to_bytes(body, limit);
    let bytes = match parts.extensions.get::<listener::BodyDeadline>() {
        Some(deadline) => tokio::time::timeout_at(deadline.0, read)
            .await
            .map_err(|_| ApiError::SlowBody)?,
        None => read.await,
    }
    .map_err(|_| ApiError::TooLarge)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if !file && first.is_some_and(|&b| b != b'{') {
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
        .route("/logout", post(handlers::accounts::logout))
        .route("/me", get(handlers::accounts::me))
        .route("/me/vehicles", get(handlers::accounts::my_vehicles))
        .route(
            "/users",
            post(handlers::accounts::create_user).get(handlers::admin::users),
        )
        .route(
            "/settings/retention",
            get(handlers::admin::retention).put(handlers::admin::set_retention),
        )
        .route(
            "/users/{username}/revoke",
            post(handlers::accounts::revoke_user),
        )
        .route(
            "/users/{username}/disable",
            post(handlers::accounts::disable_user),
        )
        .route(
            "/users/{username}/enable",
            post(handlers::accounts::enable_user),
        )
        .route(
            "/users/{username}/password",
            post(handlers::accounts::reset_password),
        )
        .route("/me/password", post(handlers::accounts::change_password))
        .route("/audit", get(handlers::accounts::audit))
        .route(
            "/stations",
            post(handlers::stations::create_station).get(handlers::stations::list_stations),
        )
        .route(
            "/vehicles",
            post(handlers::vehicles::create_vehicle).get(handlers::admin::vehicles),
        )
        .route("/vehicles/search", get(handlers::vehicles::search))
        .route("/vehicles/{tag}", patch(handlers::vehicles::update_vehicle))
        .route(
            "/vehicles/{tag}/theft",
            post(handlers::thefts::report_theft),
        )
        .route(
            "/vehicles/{tag}/recovered",
            post(handlers::thefts::recovered),
        )
        .route("/vehicles/{tag}/arm", post(handlers::vehicles::arm))
        .route(
            "/vehicles/{tag}/engine",
            get(handlers::trackers::engine_commands).post(handlers::trackers::engine),
        )
        .route(
            "/trackers",
            get(handlers::trackers::list_trackers).post(handlers::trackers::create_tracker),
        )
        .route(
            "/trackers/{imei}",
            delete(handlers::trackers::delete_tracker),
        )
        .route("/vehicles/{tag}/disarm", post(handlers::vehicles::disarm))
        .route("/alerts", get(handlers::alerts::list_alerts))
        .route("/alerts/{seq}", get(handlers::response::alert))
        .route("/alerts/{seq}/accept", post(handlers::response::accept))
        .route("/alerts/{seq}/reject", post(handlers::response::reject))
        .route("/alerts/{seq}/dispatch", post(handlers::response::dispatch))
        .route(
            "/patrol/position",
            post(handlers::response::report_position),
        )
        .route("/patrol/units", get(handlers::response::units))
        .route("/tags/near", get(handlers::spatial::tags_near))
        .route("/tags/through", get(handlers::spatial::tags_through))
        .route(
            "/vehicles/{tag}/location",
            get(handlers::vehicles::location),
        )
        .route("/vehicles/{tag}/track", get(handlers::track::track))
        .route(
            "/vehicles/{tag}/companions",
            get(handlers::spatial::travelling_with),
        )
        .route("/dens", get(handlers::spatial::dens))
        .route(
            "/geofences",
            post(handlers::watch::create_geofence).get(handlers::watch::list_geofences),
        )
        .route("/geofences/{id}", delete(handlers::watch::delete_geofence))
        .route(
            "/precincts",
            post(handlers::alert_filter::create_precinct).get(handlers::alert_filter::precincts),
        )
        .route(
            "/vehicles/{tag}/pair",
            get(handlers::watch::get_pair)
                .put(handlers::watch::pair)
                .delete(handlers::watch::unpair),
        )
        .route("/alerts/stream", get(handlers::sse::stream))
        .route("/cases", get(handlers::cases::list))
        .route("/cases/{id}", get(handlers::cases::file))
        .route("/cases/{id}/assign", post(handlers::cases::assign))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", delete(webhooks::delete))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/hotlist",
            post(hotlist::import).layer(DefaultBodyLimit::max(hotlist::MAX_HOTLIST_BYTES)),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Login and this API's description are the calls without a token.
        .route("/login", post(handlers::accounts::login))
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
        .route("/healthz", get(handlers::health::healthz))
        .route("/metrics", get(handlers::health::metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
