//! The router alone, driven request by request with `oneshot`: authentication, roles and input
//! checks need no sockets, no gateway and no tracker. Nothing here reaches the tracker (its
//! channels have no receiver: a request that asked it would be answered 503), so what these
//! tests see is decided by the router and the handlers' checks. Whole-server behaviour is in the
//! `tests` crate.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use tagwatch_api::{app, ApiState, TokenHash, MAX_BODY_BYTES};
use tagwatch_gateway::StationKeys;
use tagwatch_ingest::live::{AlertBus, DEFAULT_RING};
use tagwatch_ingest::Health;
use tagwatch_model::Role;
use tagwatch_store::Store;
use tower::ServiceExt;

const ADMIN: &str = "router-test-admin-token";

/// The router over an in-memory store, with an owner `olga` whose token is returned.
async fn router() -> (Router, String) {
    let store = Store::open("sqlite::memory:").await.expect("store");
    let (tracker, _) = tokio::sync::mpsc::channel(1);
    let (queries, _) = tokio::sync::mpsc::channel(1);
    let state = ApiState {
        store: store.clone(),
        keys: StationKeys::default(),
        tracker,
        live: tagwatch_api::live::Live::Tracker(queries),
        bus: Arc::new(AlertBus::new(DEFAULT_RING)),
        admin_token: TokenHash::of(ADMIN),
        registry: Arc::new(prometheus_client::registry::Registry::default()),
        health: Arc::new(Health::default()),
        limits: Arc::new(tagwatch_api::limits::Limits::configured(
            1_000, 1_000, 1_000, 1_000,
        )),
        tile_url: None,
        roads: Default::default(),
        retention_days: Arc::new(AtomicU32::new(90)),
        devices: Default::default(),
        audit: tagwatch_api::audit_writer::AuditWriter::start(store.clone()),
        identities: Default::default(),
    };
    let router = app(state);
    let hash = tagwatch_api::auth::hash_password("olga-long-password".into())
        .await
        .expect("hash");
    store
        .insert_user("olga", &hash, Role::Owner, tagwatch_model::time::now_ms())
        .await
        .expect("user");
    let (status, login) = call(
        &router,
        Request::post("/api/v1/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"username": "olga", "password": "olga-long-password"}).to_string(),
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["token"].as_str().expect("a token").to_owned();
    (router, token)
}

/// Sends one request; returns the status and the JSON body (null when there is none).
async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.expect("answered");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

fn post(uri: &str, token: &str, body: Value) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn without_a_valid_token_every_endpoint_answers_401() {
    let (router, _) = router().await;
    for token in [None, Some("not-a-token"), Some("")] {
        let mut request = Request::get("/api/v1/stations");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}

#[tokio::test]
async fn an_owner_is_refused_what_only_police_and_admins_may_do() {
    let (router, olga) = router().await;
    let new_station = json!({"id": 7, "name": "gate", "lat": 22.5, "lon": 114.0});
    let (status, body) = call(&router, post("/api/v1/stations", &olga, new_station)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let near = "/api/v1/tags/near?lat=22.5&lon=114&radius_m=500&purpose=case%2012";
    let (status, body) = call(&router, get(near, &olga)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Her own identity she may read.
    let (status, me) = call(&router, get("/api/v1/me", &olga)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("olga"), Some("owner"))
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let (router, _) = router().await;
    let cases = [
        (
            json!({"id": 7, "name": "gate", "lat": 91.0, "lon": 114.0}),
            "lat",
        ),
        (
            json!({"id": 7, "name": "gate", "lat": 22.5, "lon": 181.0}),
            "lon",
        ),
        (
            json!({"id": 0, "name": "gate", "lat": 22.5, "lon": 114.0}),
            "id",
        ),
        (
            json!({"id": 7, "name": "", "lat": 22.5, "lon": 114.0}),
            "name",
        ),
        (
            json!({"id": 7, "name": "gate", "lat": 22.5, "lon": 114.0, "key": "xyz"}),
            "key",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(&router, post("/api/v1/stations", ADMIN, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let near = |q: &str| format!("/api/v1/tags/near?{q}&purpose=case%2012");
    for (query, field) in [
        ("lat=95&lon=114&radius_m=500", "lat"),
        ("lat=22.5&lon=114&radius_m=0", "radius_m"),
        ("lat=22.5&lon=114&radius_m=500&minutes=0", "minutes"),
    ] {
        let (status, answer) = call(&router, get(&near(query), ADMIN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
    }
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_with_their_reason() {
    let (router, _) = router().await;
    let not_json = Request::post("/api/v1/stations")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"id\": 7,"))
        .expect("request");
    let (status, answer) = call(&router, not_json).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_body");
    let huge = json!({"id": 7, "name": "x".repeat(MAX_BODY_BYTES), "lat": 1.0, "lon": 1.0});
    let (status, answer) = call(&router, post("/api/v1/stations", ADMIN, huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "too_large");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let (router, _) = router().await;
    let (status, answer) = call(&router, get("/api/v1/nothing-here", ADMIN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["code"], "not_found");
    let (status, answer) = call(&router, post("/api/v1/me", ADMIN, json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer["error"]["code"], "method_not_allowed");
}
