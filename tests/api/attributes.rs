//! The attribute registry and typed attribute writes.

use serde_json::json;

use crate::helpers::TestApp;

const DEFINE: &str = "mutation($input: DefineAttributeInput!) { defineAttribute(input: $input) { attribute { name type description } } }";

#[tokio::test]
async fn attributes_are_declared_listed_and_redeclared() {
    let app = TestApp::spawn().await;
    let input = json!({ "name": "ltv", "type": "NUMBER", "description": "lifetime value" });
    let defined = app.data(DEFINE, json!({ "input": input })).await;
    assert_eq!(
        defined["defineAttribute"]["attribute"],
        json!({ "name": "ltv", "type": "NUMBER", "description": "lifetime value" })
    );
    app.define_attribute("plan", "STRING").await;

    let redeclared = json!({ "name": "ltv", "type": "NUMBER", "description": "LTV in EUR" });
    app.data(DEFINE, json!({ "input": redeclared })).await;
    let listed = app
        .data("{ attributes { name type description } }", json!({}))
        .await;
    assert_eq!(
        listed["attributes"],
        json!([
            { "name": "ltv", "type": "NUMBER", "description": "LTV in EUR" },
            { "name": "plan", "type": "STRING", "description": null }
        ])
    );
}

#[tokio::test]
async fn a_declared_type_cannot_change() {
    let app = TestApp::spawn().await;
    app.define_attribute("ltv", "NUMBER").await;
    let error = app
        .error(
            DEFINE,
            json!({ "input": { "name": "ltv", "type": "STRING" } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "CONFLICT");
    assert_eq!(
        error["message"],
        "attribute `ltv` is already declared as a number; its type cannot change"
    );
    let error = app
        .error(
            DEFINE,
            json!({ "input": { "name": "LTV", "type": "NUMBER" } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "CONFLICT");
}

#[tokio::test]
async fn invalid_attribute_names_are_refused() {
    let app = TestApp::spawn().await;
    for name in ["", "1st", "email", "a/b"] {
        let error = app
            .error(
                DEFINE,
                json!({ "input": { "name": name, "type": "STRING" } }),
            )
            .await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_ATTRIBUTE",
            "{name:?}: {error}"
        );
        assert_eq!(error["extensions"]["attribute"], name);
    }
}

#[tokio::test]
async fn every_type_round_trips_and_null_unsets() {
    let app = TestApp::spawn().await;
    for (name, value_type) in [
        ("plan", "STRING"),
        ("ltv", "NUMBER"),
        ("vip", "BOOL"),
        ("trial_ends", "DATETIME"),
        ("tags", "STRING_LIST"),
    ] {
        app.define_attribute(name, value_type).await;
    }
    let attributes = json!({
        "plan": "pro", "ltv": 99.5, "vip": false,
        "trial_ends": "2026-12-01T08:00:00+02:00", "tags": ["vip", "beta", "vip"]
    });
    let contact = app
        .upsert(json!({ "externalId": "u1", "attributes": attributes }))
        .await;
    let expected = json!({
        "plan": "pro", "ltv": 99.5, "vip": false,
        "trial_ends": "2026-12-01T06:00:00+00:00", "tags": ["vip", "beta"]
    });
    assert_eq!(contact["attributes"], expected);
    assert_eq!(
        app.contact(contact["id"].as_str().unwrap()).await["attributes"],
        expected
    );

    let unset = app
        .upsert(json!({ "externalId": "u1", "attributes": { "vip": null, "tags": null } }))
        .await;
    assert_eq!(
        unset["attributes"],
        json!({ "plan": "pro", "ltv": 99.5, "trial_ends": "2026-12-01T06:00:00+00:00" })
    );
}

#[tokio::test]
async fn undeclared_or_mistyped_attributes_are_refused_naming_the_attribute() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("ltv", "NUMBER").await;
    let upsert =
        "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";

    let error = app
        .error(
            upsert,
            json!({ "input": { "externalId": "u1", "attributes": { "plna": "pro" } } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_ATTRIBUTE");
    assert_eq!(error["extensions"]["attribute"], "plna");
    assert_eq!(
        error["message"],
        "attribute `plna` is not declared (did you mean `plan`?); declare it with `defineAttribute` first"
    );

    let error = app
        .error(
            upsert,
            json!({ "input": { "externalId": "u1", "attributes": { "ltv": "high" } } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_ATTRIBUTE");
    assert_eq!(
        error["message"],
        "attribute `ltv` is a number; got string `\"high\"`"
    );

    let error = app
        .error(
            upsert,
            json!({ "input": { "externalId": "u1", "attributes": [1] } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_INPUT");
    assert_eq!(
        app.total_count().await,
        0,
        "failed upserts leave nothing behind"
    );
    assert_eq!(
        app.data("{ attributes { name } }", json!({})).await["attributes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
