//! # The web pages, served by the binary itself: the officers' console (`/`) and the owners'
//! app (`/owner`), in English and Simplified Chinese.
//!
//! The page, its script and style (`web/`) and Leaflet (installed from npm by the build script)
//! are embedded at compile time, so a deployment is one file and works without internet access.
//! `GET /config.json` tells the page which tile URL to use; without one it draws stations,
//! tracks and alerts on a plain background.

use crate::ApiState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

macro_rules! asset {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $path)).as_slice()
    };
}

/// Path, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 9] = [
    ("/", "text/html; charset=utf-8", asset!("index.html")),
    ("/owner", "text/html; charset=utf-8", asset!("owner.html")),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        asset!("app.js"),
    ),
    (
        "/owner.js",
        "text/javascript; charset=utf-8",
        asset!("owner.js"),
    ),
    (
        "/common.js",
        "text/javascript; charset=utf-8",
        asset!("common.js"),
    ),
    (
        "/i18n.js",
        "text/javascript; charset=utf-8",
        asset!("i18n.js"),
    ),
    ("/app.css", "text/css; charset=utf-8", asset!("app.css")),
    (
        "/vendor/leaflet.js",
        "text/javascript; charset=utf-8",
        asset!("node_modules/leaflet/dist/leaflet.js"),
    ),
    (
        "/vendor/leaflet.css",
        "text/css; charset=utf-8",
        asset!("node_modules/leaflet/dist/leaflet.css"),
    ),
];

/// Scripts and styles only from here; tiles from anywhere the operator configured; data only
/// from this API.
const CSP: &str = "default-src 'self'; img-src 'self' data: https: http:; connect-src 'self'; \
                   frame-ancestors 'none'";

/// Paths of the embedded files, for the router.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(path, _, _)| *path)
}

/// Serves the embedded file at `path`.
pub fn asset(path: &'static str) -> impl IntoResponse + Clone {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .copied()
        .expect("paths() lists only embedded assets");
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /config.json`: what the page needs before login.
pub async fn config(State(state): State<ApiState>) -> impl IntoResponse {
    Json(json!({ "tile_url": state.tile_url, "roads": *state.roads }))
}
