//! An administrator's lists and settings: accounts (never their password hashes), registered
//! vehicles paged by tag with owner and stolen flag, and the retention period, which outlives a
//! restart. Nobody else may see or change them.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{call, create_user, get, login, post, provision, TestServer, TOKEN};

#[tokio::test]
async fn admins_list_accounts_and_vehicles_and_set_the_retention_period() {
    let mut server = TestServer::start().await;
    create_user(&server, "alice", "owner").await;
    create_user(&server, "bob", "officer").await;
    let bob = login(&server, "bob").await;
    provision(&server, 1001, 10).await;
    for tag in [11, 12] {
        let body = json!({"tag": tag, "plate": format!("P-{tag}"), "owner_name": "A",
            "owner_phone": "1", "owner": "alice"});
        assert_eq!(
            post(&server, "/api/v1/vehicles", TOKEN, body).await.0,
            StatusCode::CREATED
        );
    }
    let theft = json!({"note": "gone"});
    let (status, _) = post(&server, "/api/v1/vehicles/11/theft", TOKEN, theft).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, users) = get(&server, "/api/v1/users", TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, &str, i64)> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["username"].as_str().expect("name"),
                u["role"].as_str().expect("role"),
                u["live_tokens"].as_i64().expect("tokens"),
            )
        })
        .collect();
    assert_eq!(names, [("alice", "owner", 0), ("bob", "officer", 1)]);
    assert!(
        !users.to_string().contains("argon2"),
        "no password hash: {users}"
    );

    let (status, page) = get(&server, "/api/v1/vehicles?limit=2", TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["vehicles"][0]["tag"], 10);
    assert_eq!(
        (
            page["vehicles"][1]["stolen"].clone(),
            page["vehicles"][1]["owner"].clone()
        ),
        (json!(true), json!("alice"))
    );
    assert_eq!(page["next_after"], 11);
    let (_, rest) = get(&server, "/api/v1/vehicles?after=11&limit=2", TOKEN).await;
    assert_eq!(
        (
            rest["vehicles"][0]["tag"].clone(),
            rest["vehicles"][0]["stolen"].clone()
        ),
        (json!(12), json!(false))
    );
    assert_eq!(rest["next_after"], json!(null), "the last page");
    let (status, bad) = get(&server, "/api/v1/vehicles?limit=0", TOKEN).await;
    assert_eq!(
        (status, bad["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("limit"))
    );

    let (status, retention) = get(&server, "/api/v1/settings/retention", TOKEN).await;
    assert_eq!(
        (status, retention),
        (StatusCode::OK, json!({"retention_days": 90}))
    );
    let put = |days: i64| {
        let server = &server;
        async move {
            call(
                server,
                Method::PUT,
                "/api/v1/settings/retention",
                TOKEN,
                Some(json!({"retention_days": days})),
            )
            .await
        }
    };
    for bad in [0, 3_651] {
        let (status, answer) = put(bad).await;
        assert_eq!(
            (status, answer["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("retention_days")),
            "{bad}"
        );
    }
    assert_eq!(
        put(30).await,
        (StatusCode::OK, json!({"retention_days": 30}))
    );

    // Only admins.
    for path in [
        "/api/v1/users",
        "/api/v1/vehicles",
        "/api/v1/settings/retention",
    ] {
        assert_eq!(
            get(&server, path, &bob).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    server.restart().await;
    let (_, retention) = get(&server, "/api/v1/settings/retention", TOKEN).await;
    assert_eq!(
        retention,
        json!({"retention_days": 30}),
        "kept across the restart"
    );
}
