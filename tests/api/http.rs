//! Plain HTTP surface: probes, GraphiQL, body limit, batches.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn probes_answer() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
}

/// GraphiQL is served from the binary: the page loads nothing from another host, every script
/// and stylesheet it names is served here, and the big ones travel compressed.
#[tokio::test]
async fn get_graphql_serves_graphiql_with_its_assets() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"api-key\""), "no key field: {html}");
    assert!(
        !html.contains("//unpkg") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 5, "{assets:?}");
    for asset in assets {
        let response = app
            .client
            .get(app.url(asset))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        let expected = if asset.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            content_type.starts_with(expected),
            "{asset}: {content_type}"
        );
        if asset.ends_with("graphiql.min.js") {
            assert_eq!(response.headers()["content-encoding"], "gzip");
            let compressed = response.bytes().await.unwrap().len();
            assert!(compressed < 1_500_000, "{compressed} bytes");
        }
    }
    let missing = app
        .client
        .get(app.url("/graphiql/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_code() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(qwry_contacts::http::MAX_BODY_BYTES + 1);
    let body = json!({ "query": "{ attributes { name } }", "variables": { "padding": padding } });
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
}

#[tokio::test]
async fn batches_execute_each_operation_and_are_capped() {
    let app = TestApp::spawn().await;
    let one = json!({ "query": "{ contacts { totalCount } }" });
    let answers = app.post_json(json!([one, one])).await;
    assert_eq!(
        answers,
        json!([
            { "data": { "contacts": { "totalCount": 0 } } },
            { "data": { "contacts": { "totalCount": 0 } } }
        ])
    );
    let too_many: Vec<Value> = (0..=qwry_contacts::http::MAX_BATCH_LEN)
        .map(|_| one.clone())
        .collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// `ALLOWED_ORIGINS` origins get CORS headers and preflight answers; other origins, and every
/// origin when none is configured, get none.
#[tokio::test]
async fn cors_answers_the_allowed_origins_only() {
    use qwry_contacts::config::AllowedOrigins;

    let allowed = "https://app.example.com";
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.allowed_origins = AllowedOrigins::List(vec![allowed.to_owned()]);
    })
    .await;
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let answer = preflight(&app, allowed).await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let headers = answer.headers();
    assert_eq!(headers["access-control-allow-origin"], allowed);
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let response = app
        .client
        .post(app.url("/graphql"))
        .header("origin", allowed)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], allowed);
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );

    let stranger = preflight(&app, "https://evil.example.net").await.unwrap();
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let closed = TestApp::spawn().await;
    let answer = preflight(&closed, allowed).await.unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(!answer.status().is_success(), "{}", answer.status());
}

/// The console is served at `/` with its script and stylesheet, from the binary (no CDN).
#[tokio::test]
async fn the_console_is_served_at_the_root() {
    let app = TestApp::spawn().await;
    let page = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://"), "{html}");
    for (asset, content_type) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        assert!(html.contains(asset), "{asset} not linked: {html}");
        let response = reqwest::get(app.url(asset)).await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let served = response.headers()["content-type"].to_str().unwrap();
        assert!(served.starts_with(content_type), "{asset}: {served}");
    }
    // Where browsers look for an icon unasked.
    let icon = reqwest::get(app.url("/favicon.ico")).await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let missing = reqwest::get(app.url("/console/nope.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}
