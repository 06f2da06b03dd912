//! Spawning the service and speaking GraphQL to it.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use qwry_contacts::app::App;
use std::collections::HashMap;

use qwry_contacts::config::{DatabaseUrl, ServeFlags, Settings, StoreSettings};

use crate::test_store::{fresh_store, server_mode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running service and an HTTP client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<io::Result<()>>,
    /// The index directory of a service over a server store, removed with it.
    _index_dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// A service over a fresh store (in memory with an in-memory index, or a new database on
    /// the test server: see [`crate::test_store`]).
    pub async fn spawn() -> Self {
        Self::spawn_adjusted(|_| {}).await
    }

    /// A service over the store at `url`, keeping its index under `data_dir`.
    pub async fn spawn_with(url: DatabaseUrl, data_dir: PathBuf) -> Self {
        Self::spawn_on(StoreSettings::new(url), data_dir).await
    }

    /// A service over `store`, keeping its index under `data_dir`.
    pub async fn spawn_on(store: StoreSettings, data_dir: PathBuf) -> Self {
        let settings = Settings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            store,
            ..test_settings()
        };
        Self::spawn_settings(settings, None).await
    }

    /// A service over a fresh store, with settings changed by `adjust`.
    pub async fn spawn_adjusted(adjust: impl FnOnce(&mut Settings)) -> Self {
        let index_dir = server_mode().then(|| tempfile::tempdir().unwrap());
        let mut settings = Settings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            store: fresh_store(),
            ..test_settings()
        };
        if let Some(dir) = &index_dir {
            settings.data_dir = dir.path().to_owned();
        }
        adjust(&mut settings);
        Self::spawn_settings(settings, index_dir).await
    }

    async fn spawn_settings(settings: Settings, index_dir: Option<tempfile::TempDir>) -> Self {
        let app = App::build(&settings).await.expect("service starts");
        let listener = TcpListener::bind(settings.listen_addr).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async {
            let _ = stop.await;
        }));
        Self {
            address,
            client: client_with_key(ADMIN_KEY),
            shutdown,
            server,
            _index_dir: index_dir,
        }
    }

    /// Stops the service gracefully and waits until its store is closed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.server.await.unwrap().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts a GraphQL request; returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post_json(json!({ "query": query, "variables": variables }))
            .await
    }

    pub async fn post_json(&self, body: Value) -> Value {
        self.post_json_with(&self.client, body).await
    }

    /// Posts a GraphQL request authenticated with `key`; returns the whole response body.
    pub async fn graphql_as(&self, key: &str, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        self.post_json_with(&client_with_key(key), body).await
    }

    /// The `data` of a request with `key` that must succeed.
    pub async fn data_as(&self, key: &str, query: &str, variables: Value) -> Value {
        let response = self.graphql_as(key, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// The `extensions.code` of the first error of a request with `key` that must fail.
    pub async fn error_code_as(&self, key: &str, query: &str, variables: Value) -> String {
        let response = self.graphql_as(key, query, variables).await;
        response["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {response:#}"))
            .to_owned()
    }

    /// Creates an API key in the admin's workspace; returns its secret and id.
    /// `scopes` are spelled as on the wire (`contacts:read`) and sent as `grantedScopes`
    /// (`CONTACTS_READ`).
    pub async fn create_key(&self, scopes: &[&str], field_policy: Value) -> (String, String) {
        let granted: Vec<String> = scopes
            .iter()
            .map(|scope| scope.to_uppercase().replace(':', "_"))
            .collect();
        let created = self
            .data(
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }",
                json!({ "input": { "name": "test key", "grantedScopes": granted, "fieldPolicy": field_policy } }),
            )
            .await["createApiKey"]
            .clone();
        (
            created["secret"].as_str().unwrap().to_owned(),
            created["apiKey"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The body of `GET path` sent with `key`.
    pub async fn get_text_as(&self, key: &str, path: &str) -> String {
        let response = client_with_key(key)
            .get(self.url(path))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    async fn post_json_with(&self, client: &reqwest::Client, body: Value) -> Value {
        let response = client
            .post(self.url("/graphql"))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// The `data` of a request that must succeed.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// The single error of a request that must fail.
    pub async fn error(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables).await;
        let errors = response["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors: {response:#}"));
        assert_eq!(errors.len(), 1, "{response:#}");
        errors[0].clone()
    }

    /// The `extensions.code` of a request that must fail.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let error = self.error(query, variables).await;
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {error:#}"))
            .to_owned()
    }

    pub async fn define_attribute(&self, name: &str, value_type: &str) {
        self.data(
            "mutation($input: DefineAttributeInput!) { defineAttribute(input: $input) { attribute { name } } }",
            json!({ "input": { "name": name, "type": value_type } }),
        )
        .await;
    }

    /// Upserts a contact; returns it with every field.
    pub async fn upsert(&self, input: Value) -> Value {
        let query = format!(
            "mutation($input: UpsertContactInput!) {{ upsertContact(input: $input) {{ contact {{ {CONTACT_FIELDS} }} }} }}"
        );
        self.data(&query, json!({ "input": input })).await["upsertContact"]["contact"].clone()
    }

    /// Tracks an anonymous visitor; returns the contact with its id.
    pub async fn track_visitor(&self, anonymous_id: &str) -> Value {
        self.data(
            "mutation($id: String!) { trackVisitor(input: { anonymousId: $id }) { contact { id } } }",
            json!({ "id": anonymous_id }),
        )
        .await["trackVisitor"]["contact"]
        .clone()
    }

    /// The contact with `id`, every field.
    pub async fn contact(&self, id: &str) -> Value {
        let query = format!("query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}");
        self.data(&query, json!({ "id": id })).await["contact"].clone()
    }

    /// The `data` of `query` once the index has applied every earlier write.
    pub async fn latest(&self, query: &str) -> Value {
        self.data(
            "{ contacts(segment: \"created_at exists\", first: 0, consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
        self.data(query, json!({})).await
    }

    pub async fn total_count(&self) -> u64 {
        self.data(
            "{ contacts(first: 0, consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await["contacts"]["totalCount"]
            .as_u64()
            .unwrap()
    }
}

/// The admin key every test service starts with (`ADMIN_API_KEY`).
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// An HTTP client that sends `key` as its bearer token.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Defaults for tests: quiet logs, short index commit delay, an admin key, no rate limit.
pub fn test_settings() -> Settings {
    let mut settings = Settings::load(&ServeFlags::default(), &HashMap::new()).unwrap();
    settings.log_filter = "warn".to_owned();
    settings.index_commit_delay = std::time::Duration::from_millis(10);
    settings.api.admin_api_key = Some(ADMIN_KEY.into());
    settings.api.rate_limit_per_second = 0;
    settings.api.auth_failures_per_second = 0;
    settings
}

/// Every field of `Contact`.
pub const CONTACT_FIELDS: &str =
    "id externalId email name phone company accountRef attributes createdAt updatedAt lastSeenAt";
