//! Access control: API keys, scopes, approved fields, and the limits that protect the API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, client_with_key};

const WHO_AM_I: &str = "{ contacts(first: 1) { totalCount } }";

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": WHO_AM_I });
    let anonymous = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    let (status, answer) = status_and_body(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    for header in ["Bearer not-a-key", "Basic dXNlcjpwdw==", "Bearer "] {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .header("authorization", header)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = status_and_body(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let export = reqwest::get(app.url("/v1/contacts/export")).await.unwrap();
    assert_eq!(export.status(), StatusCode::UNAUTHORIZED);
    // Probes and the GraphiQL page stay open.
    let probe = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_scope_admits_only_its_operations() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let contact = app
        .upsert(json!({ "externalId": "u-1", "attributes": { "plan": "pro" } }))
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();

    let upsert = "mutation { upsertContact(input: { externalId: \"u-2\" }) { contact { id } } }";
    let read = "query($id: ID!) { contact(id: $id) { id } }";
    let define =
        "mutation { defineAttribute(input: { name: \"x\", type: STRING }) { attribute { name } } }";
    let validate = "{ validateSegment(text: \"plan = \\\"pro\\\"\") { valid } }";
    let save = "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }";
    let track =
        "mutation { trackVisitor(input: { anonymousId: \"visitor-1\" }) { contact { id } } }";
    let keys = "{ apiKeys { nodes { id } } }";
    let members =
        "{ contacts(segment: \"plan = \\\"pro\\\"\", consistency: LATEST) { totalCount } }";
    let vars = json!({ "id": id });

    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    assert!(app.data_as(&reader, read, vars.clone()).await["contact"]["id"].is_string());
    for forbidden in [upsert, define, validate, save, track, keys, members] {
        assert_eq!(
            app.error_code_as(&reader, forbidden, vars.clone()).await,
            "FORBIDDEN",
            "{forbidden}"
        );
    }

    let (writer, _) = app.create_key(&["contacts:write"], Value::Null).await;
    app.data_as(&writer, upsert, json!({})).await;
    assert_eq!(
        app.error_code_as(&writer, read, vars.clone()).await,
        "FORBIDDEN"
    );

    let (marketer, _) = app
        .create_key(
            &["segments:read", "segments:write", "contacts:read"],
            Value::Null,
        )
        .await;
    app.data_as(&marketer, save, json!({})).await;
    assert_eq!(
        app.data_as(&marketer, members, json!({})).await["contacts"]["totalCount"],
        1
    );
    assert_eq!(
        app.error_code_as(&marketer, upsert, json!({})).await,
        "FORBIDDEN"
    );

    let (widget, _) = app.create_key(&["identity:write"], Value::Null).await;
    app.data_as(&widget, track, json!({})).await;
    assert_eq!(
        app.error_code_as(&widget, read, vars.clone()).await,
        "FORBIDDEN"
    );

    // The bulk streams check scopes too.
    let before = app.total_count().await;
    let import = client_with_key(&reader)
        .post(app.url("/v1/contacts/import"))
        .body("{\"externalId\":\"u-3\"}\n")
        .send()
        .await
        .unwrap();
    let (status, answer) = status_and_body(import).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(app.total_count().await, before, "nothing was imported");
}

#[tokio::test]
async fn revoked_keys_are_refused_at_once() {
    let app = TestApp::spawn().await;
    let (key, id) = app.create_key(&["contacts:read"], Value::Null).await;
    app.data_as(&key, WHO_AM_I, json!({})).await;
    let listed = app
        .data(
            "{ apiKeys { nodes { id revokedAt grantedScopes } } }",
            json!({}),
        )
        .await;
    assert!(
        listed["apiKeys"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str() && k["revokedAt"].is_null())
    );
    let revoked = app
        .data(
            "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(revoked["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
    assert_eq!(
        app.error_code_as(&key, WHO_AM_I, json!({})).await,
        "UNAUTHENTICATED"
    );
    let response = client_with_key(&key)
        .post(app.url("/graphql"))
        .json(&json!({ "query": WHO_AM_I }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secrets_are_shown_once_and_never_listed() {
    let app = TestApp::spawn().await;
    let (secret, _) = app.create_key(&["admin"], Value::Null).await;
    assert!(secret.starts_with("qwry_"));
    let listed = app
        .graphql(
            "{ apiKeys { nodes { id name prefix grantedScopes createdBy } } }",
            json!({}),
        )
        .await;
    let text = listed.to_string();
    assert!(!text.contains(&secret), "{text}");
    assert!(text.contains(&secret[..9]), "prefix shown: {text}");
    assert!(text.contains("\"ADMIN\""), "{text}");
}

#[tokio::test]
async fn field_policies_hide_fields_in_queries_exports_and_segments() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("ltv", "NUMBER").await;
    let contact = app
        .upsert(json!({
            "externalId": "u-1", "email": "ada@example.com", "name": "Ada",
            "attributes": { "plan": "pro", "ltv": 1200 }
        }))
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    app.data(
        "mutation { upsertSegment(input: { slug: \"big\", name: \"Big\", text: \"ltv > 1000\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;

    let (chatbot, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["name"], "attributes": ["plan"] }),
        )
        .await;
    let seen = app
        .data_as(
            &chatbot,
            "query($id: ID!) { contact(id: $id) { id name email externalId attributes identities { nodes { kind value } } segments { nodes { slug } } } }",
            json!({ "id": id }),
        )
        .await["contact"]
        .clone();
    assert_eq!(seen["name"], "Ada");
    assert_eq!(seen["email"], Value::Null);
    assert_eq!(seen["externalId"], Value::Null);
    assert_eq!(seen["attributes"], json!({ "plan": "pro" }));
    assert_eq!(
        seen["identities"]["nodes"],
        json!([]),
        "emails and external ids are hidden too"
    );
    assert_eq!(
        seen["segments"]["nodes"],
        json!([{ "slug": "pros" }]),
        "`big` tests ltv"
    );

    // A segment over a hidden field could reveal it by counting: refused.
    let error = app
        .graphql_as(
            &chatbot,
            "{ contacts(segment: \"ltv > 1000\") { totalCount } }",
            json!({}),
        )
        .await["errors"][0]
        .clone();
    assert_eq!(error["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        error["extensions"]["diagnostics"][0]["code"],
        "FIELD_NOT_APPROVED"
    );
    for hidden in [
        "{ contacts(segment: \"in segment \\\"big\\\"\") { totalCount } }",
        "{ contacts(segment: \"email exists\") { totalCount } }",
        "{ segment(slug: \"big\") { count } }",
    ] {
        assert_eq!(
            app.error_code_as(&chatbot, hidden, json!({})).await,
            "FORBIDDEN",
            "{hidden}"
        );
    }
    let validation = app
        .data_as(
            &chatbot,
            "{ validateSegment(text: \"ltv > 1\") { valid errors { errorCode } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        validation["validateSegment"],
        json!({ "valid": false, "errors": [{ "errorCode": "FIELD_NOT_APPROVED" }] })
    );
    let allowed = app
        .data_as(
            &chatbot,
            "{ contacts(segment: \"plan = \\\"pro\\\"\", consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(allowed["contacts"]["totalCount"], 1);

    // Exports obey the same policy.
    let export = app.get_text_as(&chatbot, "/v1/contacts/export").await;
    let line: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(line["name"], "Ada");
    assert_eq!(line["email"], Value::Null);
    assert_eq!(line["attributes"], json!({ "plan": "pro" }));
    assert!(
        !export.contains("ada@example.com") && !export.contains("1200"),
        "{export}"
    );

    // Merge previews show only the approved fields too.
    let twin = app
        .upsert(
            json!({ "externalId": "u-9", "email": "twin@example.com", "attributes": { "ltv": 5 } }),
        )
        .await;
    let preview = app
        .data_as(
            &chatbot,
            "query($a: ID!, $b: ID!) { previewMerge(survivorId: $a, absorbedId: $b, strategy: { externalId: SURVIVOR }) { fields { field } result { email } } }",
            json!({ "a": id, "b": twin["id"] }),
        )
        .await;
    let decided: Vec<&str> = preview["previewMerge"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|decision| decision["field"].as_str().unwrap())
        .collect();
    assert!(
        decided.contains(&"name") && decided.contains(&"plan"),
        "{decided:?}"
    );
    for hidden in ["email", "externalId", "ltv"] {
        assert!(!decided.contains(&hidden), "{hidden} in {decided:?}");
    }
    assert_eq!(preview["previewMerge"]["result"]["email"], Value::Null);
}

#[tokio::test]
async fn a_key_over_its_rate_is_answered_429_with_retry_after() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.rate_limit_per_second = 1;
        settings.api.rate_limit_burst = 3;
    })
    .await;
    let client = client_with_key(ADMIN_KEY);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let response = client
            .post(app.url("/graphql"))
            .json(&json!({ "query": WHO_AM_I }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(response);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn deep_complex_and_alias_heavy_queries_are_refused() {
    let app = TestApp::spawn().await;
    let deep = "{ contacts { edges { node { segments { nodes { members { edges { node { segments { nodes { members { edges { node { segments { nodes { slug } } } } } } } } } } } } } } } }";
    let response = app.graphql(deep, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "QUERY_TOO_COMPLEX"
    );
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("16 deep; at most 12"), "{message}");
    // The same depth reached through fragments.
    let through_fragments = "{ contacts { edges { ...N } } } fragment N on ContactEdge { node { segments { nodes { members { edges { node { segments { nodes { members { edges { node { segments { nodes { slug } } } } } } } } } } } } } }";
    assert_eq!(
        app.error_code(through_fragments, json!({})).await,
        "QUERY_TOO_COMPLEX"
    );
    let wide: String = (0..40)
        .map(|n| format!("a{n}: contacts(first: 100) {{ totalCount }} "))
        .collect();
    let response = app.graphql(&format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{response:#}"
    );
    let complex: String = (0..25)
        .map(|n| format!("c{n}: contacts(first: 100) {{ edges {{ node {{ id email name phone company attributes identities {{ nodes {{ kind value }} }} }} }} }} "))
        .collect();
    let response = app.graphql(&format!("{{ {complex} }}"), json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{response:#}"
    );
}

/// The introspection query of graphql-js (`getIntrospectionQuery` with every option on, as
/// GraphiQL and code generators send it) nests nine `ofType` links, deeper than the depth limit
/// if they counted; it passes, and introspection that fans out deeper is still refused.
#[tokio::test]
async fn the_standard_introspection_query_passes_the_limits() {
    let app = TestApp::spawn().await;
    let introspection = include_str!("../fixtures/introspection.graphql");
    let schema = app.data(introspection, json!({})).await;
    assert_eq!(schema["__schema"]["queryType"]["name"], "Query");
    let types = schema["__schema"]["types"].as_array().unwrap();
    assert!(
        types.iter().any(|t| t["name"] == "Contact"),
        "{} types",
        types.len()
    );
    let fan_out = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } } } }";
    assert_eq!(
        app.error_code(fan_out, json!({})).await,
        "QUERY_TOO_COMPLEX"
    );
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let introspect = "{ __schema { queryType { name } } }";
    let development = TestApp::spawn().await;
    assert!(development.data(introspect, json!({})).await["__schema"].is_object());
    let production = TestApp::spawn_adjusted(|settings| settings.api.introspection = false).await;
    for query in [introspect, "{ __type(name: \"Contact\") { name } }"] {
        let response = production.graphql(query, json!({})).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{response:#}"
        );
        assert!(response["data"].is_null(), "{response:#}");
    }
    let typename = production.data("{ __typename }", json!({})).await;
    assert_eq!(typename["__typename"], "Query");
}

/// Any valid key can ask what it may do; the answer is its own scopes and field policy.
#[tokio::test]
async fn viewer_is_the_key_making_the_request() {
    let app = TestApp::spawn().await;
    let (secret, id) = app
        .create_key(
            &["segments:read", "contacts:read"],
            json!({ "fields": ["email"], "attributes": ["plan"] }),
        )
        .await;
    let query = "{ viewer { keyId grantedScopes scopes fieldPolicy { fields attributes } } }";
    let viewer = &app.data_as(&secret, query, json!({})).await["viewer"];
    assert_eq!(viewer["keyId"], id.as_str());
    assert_eq!(
        viewer["grantedScopes"],
        json!(["CONTACTS_READ", "SEGMENTS_READ"])
    );
    // The deprecated text form, one release more.
    assert_eq!(viewer["scopes"], json!(["contacts:read", "segments:read"]));
    assert_eq!(viewer["fieldPolicy"]["fields"], json!(["email"]));
    assert_eq!(viewer["fieldPolicy"]["attributes"], json!(["plan"]));
    let admin = &app.data(query, json!({})).await["viewer"];
    assert!(
        admin["grantedScopes"]
            .as_array()
            .unwrap()
            .contains(&json!("ADMIN")),
        "{admin}"
    );
    assert_eq!(admin["fieldPolicy"]["fields"], Value::Null);
    assert_eq!(
        app.error_code_as("not-a-key", query, json!({})).await,
        "UNAUTHENTICATED"
    );
}

/// Every authenticated answer says where its key stands (`RateLimit-Policy`, `RateLimit`, the
/// IETF httpapi draft); `viewer` shows the rate in force; a key created with a rate of its own
/// is held to it (429 `RATE_LIMITED` with `Retry-After` and the same headers), and a rate
/// raised by `updateApiKey` applies from its next request. Rates out of bounds are refused.
#[tokio::test]
async fn keys_have_rate_limits_of_their_own_told_in_every_answer() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.rate_limit_per_second = 1_000;
        settings.api.rate_limit_burst = 2_000;
    })
    .await;
    let header = |response: &reqwest::Response, name: &str| {
        response.headers()[name].to_str().unwrap().to_owned()
    };
    let ask = |client: reqwest::Client, query: &'static str| {
        let url = app.url("/graphql");
        async move {
            client
                .post(url)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap()
        }
    };
    const VIEWER: &str = "{ viewer { rateLimit { perSecond burst } } }";

    // The admin key has no rate of its own: the server's default.
    let answer = ask(app.client.clone(), VIEWER).await;
    assert_eq!(header(&answer, "ratelimit-policy"), "\"key\";q=2000;w=2");
    let state = header(&answer, "ratelimit");
    assert!(state.starts_with("\"key\";r=19"), "{state}");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["data"]["viewer"]["rateLimit"],
        json!({ "perSecond": 1000, "burst": 2000 })
    );

    // A key of its own rate: 1 a second, 2 at once.
    let created = app
        .data(
            "mutation { createApiKey(input: { name: \"slow\", scopes: [\"contacts:read\"], rateLimit: { perSecond: 1, burst: 2 } }) { secret apiKey { id rateLimit { perSecond burst } } key { id } } }",
            json!({}),
        )
        .await["createApiKey"]
        .clone();
    assert_eq!(
        created["apiKey"]["rateLimit"],
        json!({ "perSecond": 1, "burst": 2 })
    );
    // The deprecated `key` names the same key for one release.
    assert_eq!(created["key"]["id"], created["apiKey"]["id"]);
    let slow = client_with_key(created["secret"].as_str().unwrap());
    let first = ask(slow.clone(), VIEWER).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "ratelimit-policy"), "\"key\";q=2;w=2");
    assert_eq!(header(&first, "ratelimit"), "\"key\";r=1;t=1");
    let body: Value = first.json().await.unwrap();
    assert_eq!(
        body["data"]["viewer"]["rateLimit"],
        json!({ "perSecond": 1, "burst": 2 })
    );
    let second = ask(slow.clone(), VIEWER).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(header(&second, "ratelimit"), "\"key\";r=0;t=2");
    let refused = ask(slow.clone(), VIEWER).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "ratelimit"), "\"key\";r=0;t=2");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Raised by an admin: the next request runs at the new rate.
    let raised = app
        .data(
            "mutation($id: ID!) { updateApiKey(input: { id: $id, rateLimit: { perSecond: 100 } }) { apiKey { rateLimit { perSecond burst } } } }",
            json!({ "id": created["apiKey"]["id"] }),
        )
        .await;
    assert_eq!(
        raised["updateApiKey"]["apiKey"]["rateLimit"],
        json!({ "perSecond": 100, "burst": 200 })
    );
    let after = ask(slow, VIEWER).await;
    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(header(&after, "ratelimit-policy"), "\"key\";q=200;w=2");
    // Another change keeps the rate, and a new field policy is stored whole.
    let narrowed = app
        .data(
            "mutation($id: ID!) { updateApiKey(input: { id: $id, fieldPolicy: { fields: [\"name\"], requireVerifiedIdentity: true } }) { apiKey { rateLimit { perSecond } fieldPolicy { fields requireVerifiedIdentity } } } }",
            json!({ "id": created["apiKey"]["id"] }),
        )
        .await;
    assert_eq!(
        narrowed["updateApiKey"]["apiKey"],
        json!({ "rateLimit": { "perSecond": 100 }, "fieldPolicy": { "fields": ["name"], "requireVerifiedIdentity": true } })
    );

    for bad in [
        "{ perSecond: 0 }",
        "{ perSecond: 100001 }",
        "{ perSecond: 10, burst: 5 }",
        "{ perSecond: 10, burst: 101 }",
    ] {
        let query = format!(
            "mutation {{ createApiKey(input: {{ name: \"bad\", scopes: [\"contacts:read\"], rateLimit: {bad} }}) {{ secret }} }}"
        );
        let code = app.error_code_as(ADMIN_KEY, &query, json!({})).await;
        assert_eq!(code, "INVALID_INPUT", "{bad}");
    }
}

/// A key's scopes are `grantedScopes` (an enum) or, deprecated, `scopes` text: exactly one.
#[tokio::test]
async fn a_key_takes_its_scopes_one_way() {
    let app = TestApp::spawn().await;
    let create = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { grantedScopes scopes } } }";
    let by_text = app
        .data(
            create,
            json!({ "input": { "name": "text", "scopes": ["contacts:read"] } }),
        )
        .await;
    assert_eq!(
        by_text["createApiKey"]["apiKey"],
        json!({ "grantedScopes": ["CONTACTS_READ"], "scopes": ["contacts:read"] })
    );
    for input in [
        json!({ "name": "both", "scopes": ["contacts:read"], "grantedScopes": ["CONTACTS_READ"] }),
        json!({ "name": "neither" }),
        json!({ "name": "none", "grantedScopes": [] }),
    ] {
        assert_eq!(
            app.error_code(create, json!({ "input": input })).await,
            "INVALID_INPUT",
            "{input}"
        );
    }
    let keys = app.data("{ apiKeys { nodes { name } } }", json!({})).await;
    let names: Vec<&str> = keys["apiKeys"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|key| key["name"].as_str())
        .collect();
    assert!(names.contains(&"text"), "{names:?}");
    for refused in ["both", "neither", "none"] {
        assert!(!names.contains(&refused), "{names:?}");
    }
    app.stop().await;
}
