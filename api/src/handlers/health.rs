//! # Health and metrics: for load balancers and Prometheus.

use crate::answers::HealthAnswer;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::sync::atomic::Ordering;
use tagwatch_model::time::to_rfc3339;

/// `GET /healthz`: 200 while the store commits, 503 while it does not.
pub async fn healthz(State(state): State<ApiState>) -> impl IntoResponse {
    let h = &state.health;
    let store_ok = h.store_ok.load(Ordering::Relaxed);
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let last_commit = h.last_commit_ms.load(Ordering::Relaxed);
    (
        status,
        Json(HealthAnswer {
            status: if store_ok { "ok" } else { "store_unavailable" },
            store_ok,
            last_commit: (last_commit > 0).then(|| to_rfc3339(last_commit)),
            frames_in_flight: h.frames_in_flight.load(Ordering::Relaxed),
            queue_depth: h.queue_depth.load(Ordering::Relaxed),
            stations: state.keys.len(),
        }),
    )
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
