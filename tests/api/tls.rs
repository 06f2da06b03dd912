//! HTTPS and WSS (`TLS_CERT_FILE`, `TLS_KEY_FILE`): the same API over TLS, a renewed certificate
//! served without a restart, a broken renewal that keeps the last good certificate, and a
//! client that never finishes its handshake delaying nobody.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use qwry_contacts::config::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{ADMIN_KEY, TestApp};

/// A test certificate authority and the leaf certificates it signs for `localhost`.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate: its PEM files' contents and its DER (what a client sees).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Authority {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// Writes `leaf` over the files in `dir` (each by a rename, as a certificate manager does).
fn install(dir: &Path, leaf: &Leaf) {
    for (name, text) in [("key.pem", &leaf.key_pem), ("cert.pem", &leaf.cert_pem)] {
        let staged = dir.join(format!("{name}.new"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, dir.join(name)).unwrap();
    }
}

/// A fresh HTTPS client trusting `authority` (a new connection, so a new handshake, each time).
fn client(authority: &Authority, address: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(authority.pem().as_bytes()).unwrap())
        .resolve("localhost", address)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Asks for the viewer over HTTPS; returns the body and the certificate the server presented.
async fn viewer(authority: &Authority, address: SocketAddr) -> (Value, Vec<u8>) {
    let response = client(authority, address)
        .post(format!("https://localhost:{}/graphql", address.port()))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "query": "{ viewer { keyId } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let presented = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the server's certificate")
        .to_vec();
    (response.json().await.unwrap(), presented)
}

/// Waits (up to 10 s) until the server presents `der`.
async fn served(authority: &Authority, address: SocketAddr, der: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if viewer(authority, address).await.1 == der {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn spawn_with_tls(dir: &Path) -> TestApp {
    let files = TlsFiles {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    TestApp::spawn_adjusted(|settings| settings.tls = Some(files)).await
}

#[tokio::test]
async fn the_api_and_the_socket_are_served_over_tls_and_a_renewal_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    let first = authority.leaf();
    install(dir.path(), &first);
    let app = spawn_with_tls(dir.path()).await;

    // HTTPS: the same API, the same gate.
    let (body, presented) = viewer(&authority, app.address).await;
    assert!(body["data"]["viewer"]["keyId"].is_string(), "{body}");
    assert_eq!(presented, first.der);
    let anonymous = client(&authority, app.address)
        .post(format!("https://localhost:{}/graphql", app.address.port()))
        .json(&json!({ "query": "{ viewer { keyId } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "no key, no answer: TLS changes nothing of the gate"
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .post(format!("http://{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|response| response.status() != 200),
        "plain HTTP is not served on the TLS port"
    );

    // WSS: graphql-transport-ws over the same listener.
    let mut socket = wss(&authority, app.address).await;
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {ADMIN_KEY}") } })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let acknowledged = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("an answer in time")
        .expect("the socket is open")
        .unwrap();
    let acknowledged: Value = serde_json::from_str(acknowledged.to_text().unwrap()).unwrap();
    assert_eq!(acknowledged["type"], "connection_ack");

    // A renewed certificate is served to the next handshake, without a restart.
    let second = authority.leaf();
    install(dir.path(), &second);
    assert!(
        served(&authority, app.address, &second.der).await,
        "the renewed certificate was not served within 10 s"
    );

    // A broken renewal is refused; the last good certificate stays.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (body, presented) = viewer(&authority, app.address).await;
    assert!(body["data"]["viewer"]["keyId"].is_string(), "{body}");
    assert_eq!(presented, second.der);

    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_delays_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    install(dir.path(), &authority.leaf());
    let app = spawn_with_tls(dir.path()).await;

    // Connections that open and say nothing (a slowloris at the TLS layer).
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(app.address).await.unwrap());
    }
    let started = Instant::now();
    let (body, _) = viewer(&authority, app.address).await;
    assert!(body["data"]["viewer"]["keyId"].is_string(), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a request waited {:?} behind silent handshakes",
        started.elapsed()
    );
    drop(silent);
    app.stop().await;
}

#[test]
fn only_one_of_the_two_files_is_a_configuration_error() {
    use std::collections::HashMap;

    use qwry_contacts::config::{ServeFlags, Settings};

    let env = HashMap::from([("TLS_CERT_FILE".to_owned(), "/tmp/cert.pem".to_owned())]);
    let error = Settings::load(&ServeFlags::default(), &env).unwrap_err();
    assert!(error.to_string().contains("TLS_KEY_FILE"), "{error}");
}

/// A WebSocket to `/graphql/ws` over TLS, trusting `authority`.
async fn wss(
    authority: &Authority,
    address: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            authority.issuer.der().to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut request = format!("wss://localhost:{}/graphql/ws", address.port())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    socket
}
