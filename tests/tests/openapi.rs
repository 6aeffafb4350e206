//! The OpenAPI document cannot drift from the router: every route the router registers under
//! `/api/v1` is documented with the same method, and every documented operation is answered by
//! a handler (not the "no such endpoint" fallback, not 405).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{call, client, TestServer, TOKEN};

/// (method, path) of every `.route(...)` in the `/api/v1` router, read from its source.
fn routed() -> BTreeSet<(String, String)> {
    let source = include_str!("../../api/src/lib.rs");
    let start = source
        .find("let api = Router::new()")
        .expect("the api router");
    let end = source[start..]
        .find(".route(\"/openapi.json\"")
        .expect("the last api route")
        + start
        + ".route(\"/openapi.json\", get(openapi::serve))".len();
    let mut found = BTreeSet::new();
    let mut rest = &source[start..end];
    while let Some(at) = rest.find(".route(") {
        // The call's text, up to its matching parenthesis.
        let body = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let close = body
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .expect("balanced")
            .0;
        let call = &body[..close];
        let path = call.split('"').nth(1).expect("a path literal").to_owned();
        for method in ["get", "post", "put", "patch", "delete"] {
            for (i, _) in call.match_indices(&format!("{method}(")) {
                let before = call[..i].chars().last();
                if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                    found.insert((method.to_owned(), path.clone()));
                }
            }
        }
        rest = &body[close..];
    }
    found
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_answered() {
    let server = TestServer::start().await;
    let response = client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "served without a token");
    let doc: Value = response.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            let path = path.strip_prefix("/api/v1").expect("under /api/v1");
            documented.insert((method.clone(), path.to_owned()));
        }
    }
    let routes = routed();
    assert!(routes.len() > 30, "parsed {routes:?}");
    assert_eq!(
        routes.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routed but not documented"
    );
    assert_eq!(
        documented.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not routed"
    );

    for (method, path) in &documented {
        let concrete = path
            .replace("{tag}", "1")
            .replace("{seq}", "1")
            .replace("{id}", "1")
            .replace("{username}", "nobody");
        let method: Method = method.to_uppercase().parse().expect("method");
        let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
        if concrete == "/alerts/stream" {
            // A stream: its headers are the answer.
            let response = client()
                .get(server.url("/api/v1/alerts/stream"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("stream");
            assert_eq!(response.status(), StatusCode::OK);
            continue;
        }
        let (status, answer) = call(
            &server,
            method.clone(),
            &format!("/api/v1{concrete}"),
            TOKEN,
            body,
        )
        .await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
        assert_ne!(
            answer["error"]["message"], "no such endpoint",
            "{method} {concrete} fell through to the fallback"
        );
    }
}

/// Every answer is described by its type: each operation's success response (but the document
/// itself, the live stream and 204s) refers to a schema in `components/schemas`, and every
/// reference resolves.
#[tokio::test]
async fn every_answer_is_described_by_its_schema() {
    let server = TestServer::start().await;
    let (_, doc) = call(&server, Method::GET, "/api/v1/openapi.json", TOKEN, None).await;
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let responses = op["responses"].as_object().expect("responses");
            let (status, success) = responses
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .expect("a success response");
            for status in ["400", "401", "403", "404", "429"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            if status == "204"
                || path.ends_with("/openapi.json")
                || path.ends_with("/alerts/stream")
            {
                continue;
            }
            let content = success["content"].as_object().expect("content");
            let schema = &content.values().next().expect("a media type")["schema"];
            match schema["$ref"].as_str() {
                Some(reference) => {
                    let name = reference
                        .strip_prefix("#/components/schemas/")
                        .expect("a component");
                    assert!(schemas.contains_key(name), "{reference} does not resolve");
                }
                None => untyped.push(format!("{method} {path}")),
            }
        }
    }
    assert_eq!(untyped, Vec::<String>::new(), "answers without a schema");
    // References inside the schemas resolve too.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or("");
        let name = target
            .strip_prefix("#/components/schemas/")
            .expect("a component");
        assert!(schemas.contains_key(name), "{target} does not resolve");
    }
}
