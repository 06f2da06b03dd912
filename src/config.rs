//! One typed settings tree, loaded once from flags, then the environment, then defaults.
//!
//! The environment is passed in as a map, so loading is testable; nothing else reads `std::env`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

/// Where the service listens unless told otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
/// Where embedded data lives unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Flags of the `serve` command; each overrides the environment variable of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeFlags {
    /// Address to listen on [env: LISTEN_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, global = true)]
    pub listen_addr: Option<String>,
    /// Directory for embedded data [env: DATA_DIR] [default: ./data]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Store to use: mem://, rocksdb://PATH, surrealkv://PATH, ws://HOST:PORT
    /// [env: DATABASE_URL] [default: rocksdb://DATA_DIR/rocksdb]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Socket address of the HTTP server.
    pub listen_addr: SocketAddr,
    /// Directory for embedded data (store, and later the segment index).
    pub data_dir: PathBuf,
    /// How to reach the store.
    pub store: StoreSettings,
    /// `tracing` filter directives (`RUST_LOG`), `info` by default.
    pub log_filter: String,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: crate::telemetry::LogFormat,
    /// How long the indexer lets writes gather before it commits them (`INDEX_COMMIT_DELAY_MS`,
    /// default 100 ms): the bound on how soon a write is visible to segment queries.
    pub index_commit_delay: Duration,
    /// The default workspace's identity secret (`IDENTITY_SECRET`), the key of the HMAC that
    /// `identify` verifies; stored at start-up. Never printed.
    pub identity_secret: Option<SecretString>,
    /// Authentication and request limits.
    pub api: ApiSettings,
    /// The master key of sensitive-value encryption (`ENCRYPTION_KEY`, base64 of 32 bytes);
    /// without it, a key file under `DATA_DIR` is made at first start. Never printed.
    pub encryption_key: Option<SecretString>,
    /// Memory the segment index's writer buffers before it writes a segment (`INDEX_WRITER_MB`,
    /// default 64, at least 16).
    pub index_writer_bytes: u64,
    /// How long segment feed entries are kept (`FEED_RETENTION_DAYS`, default 30, 1 to 3650).
    pub feed_retention: chrono::TimeDelta,
    /// On a SurrealDB server, how long change-log entries stay for the instances that follow
    /// them (`CHANGE_LOG_RETENTION_HOURS`, default 24, 1 to 8760); an instance further behind
    /// rebuilds its index.
    pub change_log_retention: chrono::TimeDelta,
    /// How long the access log keeps who read whom (`ACCESS_LOG_RETENTION_DAYS`, default 90,
    /// up to 3650; 0 keeps no access log).
    pub access_log_retention: chrono::TimeDelta,
    /// HTTPS (and WSS) instead of plain HTTP: `TLS_CERT_FILE` and `TLS_KEY_FILE`, both or
    /// neither.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the server's certificate chain and private key; read again when they change
/// (or on SIGHUP), so a renewed certificate is served without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `TLS_CERT_FILE`: the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// `TLS_KEY_FILE`: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Whether the service runs for development or production (`MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Introspection on; a first admin key is made up and written under `DATA_DIR` if none exists.
    #[default]
    Development,
    /// Introspection off unless `INTROSPECTION=true`; keys must be provisioned explicitly.
    Production,
}

/// Authentication and protection of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `MODE`: `development` (default) or `production`.
    pub mode: Mode,
    /// Whether webhooks may target private, loopback and link-local addresses
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, default false; for development and tests).
    pub webhook_allow_private_targets: bool,
    /// The first admin key of the default workspace (`ADMIN_API_KEY`), stored (hashed) at
    /// start-up. Never printed.
    pub admin_api_key: Option<SecretString>,
    /// Whether the schema answers introspection (`INTROSPECTION`; on in development, off in
    /// production by default).
    pub introspection: bool,
    /// Requests per second each API key may make unless it has a rate of its own
    /// (`RATE_LIMIT_PER_SECOND`, default 1,000; 0 turns the default limit off).
    pub rate_limit_per_second: u32,
    /// Requests a key may make at once after a quiet spell (`RATE_LIMIT_BURST`, default twice the rate).
    pub rate_limit_burst: u32,
    /// Failed authentications per second one client address may make before it is refused
    /// (429) without its key being looked at (`AUTH_FAILURES_PER_SECOND`, default 5; 0 turns
    /// the limit off).
    pub auth_failures_per_second: u32,
    /// Failed authentications one address may make at once (`AUTH_FAILURES_BURST`, default 20).
    pub auth_failures_burst: u32,
    /// Header naming the client's address when the service runs behind a proxy that sets it
    /// (`CLIENT_ADDRESS_HEADER`, e.g. `x-forwarded-for`: its first address counts); unset, the
    /// peer address of the connection counts.
    pub client_address_header: Option<String>,
    /// Origins whose browser apps may call the API (`ALLOWED_ORIGINS`, comma-separated, e.g.
    /// `https://app.example.com,http://localhost:5173`; `*` for any; none by default).
    pub allowed_origins: AllowedOrigins,
    /// Bytes of persisted query text kept (`PERSISTED_QUERIES_MB`, default 16).
    pub persisted_query_bytes: u64,
    /// Open sockets (`/graphql/ws`) one API key may hold at once
    /// (`WS_MAX_SOCKETS_PER_KEY`, default 100).
    pub max_sockets_per_key: u32,
    /// Subscriptions one socket may hold at once (`WS_MAX_SUBSCRIPTIONS_PER_SOCKET`, default 10).
    pub max_subscriptions_per_socket: u32,
    /// The bearer token `/metrics` accepts besides admin API keys (`METRICS_TOKEN`, for a
    /// Prometheus scraper); unset, only admin keys may read metrics. Never printed.
    pub metrics_token: Option<SecretString>,
}

/// The origins answered with CORS headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// None: browsers on other origins cannot call the API.
    #[default]
    None,
    /// These origins (`scheme://host[:port]`, as browsers send them).
    List(Vec<String>),
    /// Any origin (`*`); the API authenticates by header, never by cookie.
    Any,
}

impl AllowedOrigins {
    fn parse(raw: Option<&str>) -> Result<Self, ConfigError> {
        let Some(raw) = raw else {
            return Ok(Self::None);
        };
        let origins: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .collect();
        if origins == ["*"] {
            return Ok(Self::Any);
        }
        let checked = origins
            .into_iter()
            .map(|origin| {
                let origin = origin.trim_end_matches('/');
                let host = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"));
                match host {
                    Some(host)
                        if !host.is_empty()
                            && !host.contains(['/', '*', ' ', '?', '#'])
                            && origin.is_ascii() =>
                    {
                        Ok(origin.to_owned())
                    }
                    _ => Err(ConfigError::Origin(origin.to_owned())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if checked.is_empty() {
            Self::None
        } else {
            Self::List(checked)
        })
    }
}

/// Default of [`ApiSettings::rate_limit_per_second`]: a routing engine's steady traffic with
/// room to spare (one key measured 12,000-24,000 `contact(id:)` reads a second with 16
/// connections, so a default key may take up to about a tenth of the server).
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 1_000;
/// Default of [`ApiSettings::auth_failures_per_second`].
pub const DEFAULT_AUTH_FAILURES_PER_SECOND: u32 = 5;
/// Default of [`ApiSettings::auth_failures_burst`].
pub const DEFAULT_AUTH_FAILURES_BURST: u32 = 20;
/// Default of [`ApiSettings::persisted_query_bytes`], in MiB.
pub const DEFAULT_PERSISTED_QUERIES_MB: u64 = 16;
/// Default of [`ApiSettings::max_sockets_per_key`].
pub const DEFAULT_MAX_SOCKETS_PER_KEY: u32 = 100;
/// Default of [`ApiSettings::max_subscriptions_per_socket`].
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_SOCKET: u32 = 10;

impl ApiSettings {
    /// The rate of a key without one of its own (`None`: unlimited).
    pub fn default_key_rate(&self) -> Option<crate::domain::KeyRate> {
        (self.rate_limit_per_second > 0).then(|| crate::domain::KeyRate {
            per_second: self.rate_limit_per_second,
            burst: self.rate_limit_burst.max(self.rate_limit_per_second),
        })
    }

    fn load(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mode = match env("MODE") {
            None | Some("development") => Mode::Development,
            Some("production") => Mode::Production,
            Some(other) => return Err(ConfigError::Mode(other.to_owned())),
        };
        let flag = |name: &'static str| match env(name) {
            None => Ok(None),
            Some("true" | "on" | "1") => Ok(Some(true)),
            Some("false" | "off" | "0") => Ok(Some(false)),
            Some(other) => Err(ConfigError::Flag(name, other.to_owned())),
        };
        let count = |name: &'static str| {
            env(name)
                .map(|raw| {
                    raw.parse::<u32>()
                        .map_err(|_| ConfigError::Count(name, raw.to_owned()))
                })
                .transpose()
        };
        let positive = |name: &'static str| {
            env(name)
                .map(|raw| {
                    raw.parse::<u32>()
                        .ok()
                        .filter(|limit| *limit >= 1)
                        .ok_or_else(|| ConfigError::Positive(name, raw.to_owned()))
                })
                .transpose()
        };
        let rate_limit_per_second =
            count("RATE_LIMIT_PER_SECOND")?.unwrap_or(DEFAULT_RATE_LIMIT_PER_SECOND);
        Ok(Self {
            mode,
            admin_api_key: env("ADMIN_API_KEY").map(SecretString::from),
            introspection: flag("INTROSPECTION")?.unwrap_or(mode == Mode::Development),
            rate_limit_per_second,
            rate_limit_burst: count("RATE_LIMIT_BURST")?
                .unwrap_or(rate_limit_per_second.saturating_mul(2)),
            auth_failures_per_second: count("AUTH_FAILURES_PER_SECOND")?
                .unwrap_or(DEFAULT_AUTH_FAILURES_PER_SECOND),
            auth_failures_burst: count("AUTH_FAILURES_BURST")?
                .unwrap_or(DEFAULT_AUTH_FAILURES_BURST),
            client_address_header: env("CLIENT_ADDRESS_HEADER").map(str::to_ascii_lowercase),
            allowed_origins: AllowedOrigins::parse(env("ALLOWED_ORIGINS"))?,
            webhook_allow_private_targets: flag("WEBHOOK_ALLOW_PRIVATE_TARGETS")?.unwrap_or(false),
            persisted_query_bytes: match env("PERSISTED_QUERIES_MB") {
                None => DEFAULT_PERSISTED_QUERIES_MB * MIB,
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|mb| (1..=64 * 1024).contains(mb))
                    .map(|mb| mb * MIB)
                    .ok_or_else(|| {
                        ConfigError::Megabytes("PERSISTED_QUERIES_MB", raw.to_owned(), 1)
                    })?,
            },
            max_sockets_per_key: positive("WS_MAX_SOCKETS_PER_KEY")?
                .unwrap_or(DEFAULT_MAX_SOCKETS_PER_KEY),
            max_subscriptions_per_socket: positive("WS_MAX_SUBSCRIPTIONS_PER_SOCKET")?
                .unwrap_or(DEFAULT_MAX_SUBSCRIPTIONS_PER_SOCKET),
            metrics_token: env("METRICS_TOKEN").map(SecretString::from),
        })
    }
}

/// Default of [`Settings::change_log_retention`].
pub const DEFAULT_CHANGE_LOG_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// How long membership feed entries are kept unless `FEED_RETENTION_DAYS` says otherwise.
pub const DEFAULT_FEED_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Default of [`Settings::index_commit_delay`].
pub const DEFAULT_INDEX_COMMIT_DELAY: Duration = Duration::from_millis(100);

/// How to reach SurrealDB.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Engine and location.
    pub url: DatabaseUrl,
    /// Root user for a remote server (`SURREAL_USER`).
    pub username: Option<String>,
    /// Root password for a remote server (`SURREAL_PASS`); never printed.
    pub password: Option<SecretString>,
    /// Memory bounds of the embedded SurrealKV datastore.
    pub memory: StoreMemory,
    /// SurrealDB namespace of the service's data (`SURREAL_NS`, default `qwry`).
    pub namespace: String,
    /// SurrealDB database of the service's data (`SURREAL_DB`, default `contacts`): instances
    /// that share one server and one database serve the same data.
    pub database: String,
    /// Longest a call to a SurrealDB server may take before it fails as UNAVAILABLE
    /// (`STORE_TIMEOUT_MS`, default 10 s): while the server is down or the connection stalls,
    /// requests fail fast instead of hanging. The embedded store has no such bound.
    pub call_timeout: Duration,
}

/// How long a call to a SurrealDB server may take unless `STORE_TIMEOUT_MS` says otherwise.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// SurrealDB namespace of the service's data unless `SURREAL_NS` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "qwry";
/// SurrealDB database of the service's data unless `SURREAL_DB` says otherwise.
pub const DEFAULT_DATABASE: &str = "contacts";

impl StoreSettings {
    /// Settings for a store at `url` without credentials, with the default memory bounds.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            username: None,
            password: None,
            memory: StoreMemory::default(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            database: DEFAULT_DATABASE.to_owned(),
            call_timeout: DEFAULT_STORE_TIMEOUT,
        }
    }
}

/// How much memory the embedded datastore may take. RocksDB's and SurrealKV's own defaults
/// scale with the machine (half its memory for the block cache, up to 1 GiB of write buffers
/// on 24 GiB), which is no budget for a service beside other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreMemory {
    /// Cache of decoded blocks read from disk (`STORE_CACHE_MB`, default 256).
    pub block_cache_bytes: u64,
    /// Writes buffered in memory before they are flushed to a table (`STORE_MEMTABLE_MB`,
    /// default 64; RocksDB keeps at most two such buffers).
    pub memtable_bytes: u64,
    /// Contacts and their identities kept in memory between requests (`CONTACT_CACHE_MB`,
    /// default 256; 0 keeps none).
    pub contact_cache_bytes: u64,
}

/// Directory of the embedded RocksDB store under the data directory.
const ROCKSDB_DIR: &str = "rocksdb";
/// Directory of the embedded SurrealKV store that versions before RocksDB made.
const LEGACY_STORE_DIR: &str = "store";

/// Default of [`StoreMemory::block_cache_bytes`], in MiB.
pub const DEFAULT_STORE_CACHE_MB: u64 = 256;
/// Default of [`StoreMemory::memtable_bytes`], in MiB.
pub const DEFAULT_STORE_MEMTABLE_MB: u64 = 64;
/// Default of [`StoreMemory::contact_cache_bytes`], in MiB.
pub const DEFAULT_CONTACT_CACHE_MB: u64 = 256;
/// Default of [`Settings::index_writer_bytes`], in MiB.
pub const DEFAULT_INDEX_WRITER_MB: u64 = 64;
const MIB: u64 = 1024 * 1024;

impl Default for StoreMemory {
    fn default() -> Self {
        Self {
            block_cache_bytes: DEFAULT_STORE_CACHE_MB * MIB,
            memtable_bytes: DEFAULT_STORE_MEMTABLE_MB * MIB,
            contact_cache_bytes: DEFAULT_CONTACT_CACHE_MB * MIB,
        }
    }
}

/// A SurrealDB engine and its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// In memory; gone when the process stops (tests).
    Memory,
    /// Embedded RocksDB on disk (the default).
    RocksDb(PathBuf),
    /// Embedded SurrealKV on disk (kept for stores made before RocksDB became the default).
    SurrealKv(PathBuf),
    /// A SurrealDB server over WebSocket (`ws://` or `wss://`).
    Remote(String),
}

impl DatabaseUrl {
    /// Parses `mem://`, `rocksdb://PATH`, `surrealkv://PATH`, `ws://HOST:PORT` or
    /// `wss://HOST:PORT`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw == "mem://" || raw == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = raw
            .strip_prefix("rocksdb://")
            .filter(|path| !path.is_empty())
        {
            return Ok(Self::RocksDb(PathBuf::from(path)));
        }
        if let Some(path) = raw
            .strip_prefix("surrealkv://")
            .filter(|path| !path.is_empty())
        {
            return Ok(Self::SurrealKv(PathBuf::from(path)));
        }
        let remote = ["ws://", "wss://"]
            .iter()
            .any(|scheme| raw.len() > scheme.len() && raw.starts_with(scheme));
        if remote {
            return Ok(Self::Remote(raw.to_owned()));
        }
        Err(ConfigError::DatabaseUrl(raw.to_owned()))
    }

    /// The embedded store under `data_dir`: RocksDB in `rocksdb/`, or the SurrealKV store in
    /// `store/` that earlier versions made there, so that an existing data directory keeps its
    /// data (move it with `export` and `import`).
    pub fn embedded_under(data_dir: &Path) -> Self {
        let earlier = data_dir.join(LEGACY_STORE_DIR);
        if earlier.is_dir() {
            return Self::SurrealKv(earlier);
        }
        Self::RocksDb(data_dir.join(ROCKSDB_DIR))
    }

    /// The directory of an embedded store, if this is one.
    pub fn embedded_path(&self) -> Option<&Path> {
        match self {
            Self::RocksDb(path) | Self::SurrealKv(path) => Some(path),
            Self::Memory | Self::Remote(_) => None,
        }
    }

    /// The endpoint string SurrealDB's `engine::any::connect` understands.
    pub fn endpoint(&self) -> String {
        match self {
            Self::Memory => "mem://".to_owned(),
            Self::RocksDb(path) => format!("rocksdb://{}", path.display()),
            Self::SurrealKv(path) => format!("surrealkv://{}", path.display()),
            Self::Remote(url) => url.clone(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `LISTEN_ADDR` is not `IP:PORT`.
    #[error("LISTEN_ADDR `{0}` is not an IP:PORT address, e.g. `127.0.0.1:8080`")]
    ListenAddr(String),
    /// `DATABASE_URL` names an unsupported engine.
    #[error(
        "DATABASE_URL `{0}` is not supported; use mem://, rocksdb://PATH, surrealkv://PATH, ws://HOST:PORT or wss://HOST:PORT"
    )]
    DatabaseUrl(String),
    /// `STORE_TIMEOUT_MS` is not a number of milliseconds from 100 to 600000.
    #[error("STORE_TIMEOUT_MS `{0}` must be a whole number of milliseconds from 100 to 600000")]
    StoreTimeout(String),
    /// `INDEX_COMMIT_DELAY_MS` is not a number of milliseconds up to 60000.
    #[error("INDEX_COMMIT_DELAY_MS `{0}` must be a whole number of milliseconds from 0 to 60000")]
    CommitDelay(String),
    /// `FEED_RETENTION_DAYS` is not a number of days from 1 to 3650.
    #[error("FEED_RETENTION_DAYS `{0}` must be a whole number of days from 1 to 3650")]
    FeedRetention(String),
    /// `CHANGE_LOG_RETENTION_HOURS` is not a number of hours from 1 to 8760.
    #[error("CHANGE_LOG_RETENTION_HOURS `{0}` must be a whole number of hours from 1 to 8760")]
    ChangeLogRetention(String),
    /// `IDENTITY_SECRET` is too short.
    #[error("IDENTITY_SECRET must be at least 16 bytes without surrounding spaces")]
    IdentitySecret,
    /// `ACCESS_LOG_RETENTION_DAYS` is not a number of days from 1 to 3650.
    #[error(
        "ACCESS_LOG_RETENTION_DAYS `{0}` must be a whole number of days from 0 (no access log) to 3650"
    )]
    AccessLogRetention(String),
    /// Only one of `TLS_CERT_FILE` and `TLS_KEY_FILE` is set.
    #[error("set both TLS_CERT_FILE and TLS_KEY_FILE (PEM files) to serve HTTPS, or neither")]
    PartialTls,
    /// Only one of `SURREAL_USER` and `SURREAL_PASS` is set.
    #[error("set both SURREAL_USER and SURREAL_PASS, or neither")]
    PartialCredentials,
    /// `MODE` is neither `development` nor `production`.
    #[error("MODE `{0}` must be `development` or `production`")]
    Mode(String),
    /// A switch is not `true` or `false`.
    #[error("{0} `{1}` must be `true` or `false`")]
    Flag(&'static str, String),
    /// A count is not a whole number.
    #[error("{0} `{1}` must be a whole number")]
    Count(&'static str, String),
    /// A limit is 0 or not a whole number.
    #[error("{0} `{1}` must be a whole number of at least 1")]
    Positive(&'static str, String),
    /// `LOG_FORMAT` is neither `text` nor `json`.
    #[error("LOG_FORMAT `{0}` must be `text` or `json`")]
    LogFormat(String),
    /// An entry of `ALLOWED_ORIGINS` is not an origin.
    #[error(
        "ALLOWED_ORIGINS entry `{0}` is not an origin: write scheme://host[:port], e.g. `https://app.example.com` (or `*` alone for any)"
    )]
    Origin(String),
    /// A memory size is not a whole number of MiB within bounds.
    #[error("{0} `{1}` must be a whole number of MiB, at least {2}")]
    Megabytes(&'static str, String, u64),
}

impl Settings {
    /// Resolves flags over `env` over defaults.
    pub fn load(flags: &ServeFlags, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let from_env = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let listen_raw = flags
            .listen_addr
            .as_deref()
            .or_else(|| from_env("LISTEN_ADDR"))
            .unwrap_or(DEFAULT_LISTEN_ADDR);
        let listen_addr = listen_raw
            .parse()
            .map_err(|_| ConfigError::ListenAddr(listen_raw.to_owned()))?;
        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| from_env("DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let url = match flags
            .database_url
            .as_deref()
            .or_else(|| from_env("DATABASE_URL"))
        {
            Some(raw) => DatabaseUrl::parse(raw)?,
            None => DatabaseUrl::embedded_under(&data_dir),
        };
        let (username, password) = match (from_env("SURREAL_USER"), from_env("SURREAL_PASS")) {
            (Some(user), Some(pass)) => (Some(user.to_owned()), Some(SecretString::from(pass))),
            (None, None) => (None, None),
            _ => return Err(ConfigError::PartialCredentials),
        };
        let call_timeout = match from_env("STORE_TIMEOUT_MS") {
            None => DEFAULT_STORE_TIMEOUT,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|ms| (100..=600_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| ConfigError::StoreTimeout(raw.to_owned()))?,
        };
        let index_commit_delay = match from_env("INDEX_COMMIT_DELAY_MS") {
            None => DEFAULT_INDEX_COMMIT_DELAY,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 60_000)
                .map(Duration::from_millis)
                .ok_or_else(|| ConfigError::CommitDelay(raw.to_owned()))?,
        };
        let megabytes = |name: &'static str, default: u64, least: u64| match from_env(name) {
            None => Ok(default * MIB),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|mb| (least..=1024 * 1024).contains(mb))
                .map(|mb| mb * MIB)
                .ok_or_else(|| ConfigError::Megabytes(name, raw.to_owned(), least)),
        };
        let memory = StoreMemory {
            block_cache_bytes: megabytes("STORE_CACHE_MB", DEFAULT_STORE_CACHE_MB, 8)?,
            memtable_bytes: megabytes("STORE_MEMTABLE_MB", DEFAULT_STORE_MEMTABLE_MB, 4)?,
            contact_cache_bytes: megabytes("CONTACT_CACHE_MB", DEFAULT_CONTACT_CACHE_MB, 0)?,
        };
        let index_writer_bytes = megabytes("INDEX_WRITER_MB", DEFAULT_INDEX_WRITER_MB, 16)?;
        let feed_retention = match from_env("FEED_RETENTION_DAYS") {
            None => DEFAULT_FEED_RETENTION,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=3_650).contains(days))
                .map(chrono::TimeDelta::days)
                .ok_or_else(|| ConfigError::FeedRetention(raw.to_owned()))?,
        };
        let change_log_retention = match from_env("CHANGE_LOG_RETENTION_HOURS") {
            None => DEFAULT_CHANGE_LOG_RETENTION,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|hours| (1..=8_760).contains(hours))
                .map(chrono::TimeDelta::hours)
                .ok_or_else(|| ConfigError::ChangeLogRetention(raw.to_owned()))?,
        };
        let identity_secret = match env.get("IDENTITY_SECRET").filter(|v| !v.is_empty()) {
            None => None,
            Some(raw) => Some(
                crate::domain::WorkspaceSettings::parse_secret(raw)
                    .map_err(|_| ConfigError::IdentitySecret)?,
            ),
        };
        Ok(Self {
            listen_addr,
            data_dir,
            store: StoreSettings {
                url,
                username,
                password,
                memory,
                namespace: from_env("SURREAL_NS")
                    .unwrap_or(DEFAULT_NAMESPACE)
                    .to_owned(),
                database: from_env("SURREAL_DB")
                    .unwrap_or(DEFAULT_DATABASE)
                    .to_owned(),
                call_timeout,
            },
            log_filter: from_env("RUST_LOG").unwrap_or("info").to_owned(),
            log_format: match from_env("LOG_FORMAT") {
                None => crate::telemetry::LogFormat::Text,
                Some(raw) => crate::telemetry::LogFormat::parse(raw)
                    .ok_or_else(|| ConfigError::LogFormat(raw.to_owned()))?,
            },
            index_commit_delay,
            identity_secret,
            api: ApiSettings::load(env)?,
            encryption_key: from_env("ENCRYPTION_KEY").map(SecretString::from),
            index_writer_bytes,
            feed_retention,
            change_log_retention,
            access_log_retention: match from_env("ACCESS_LOG_RETENTION_DAYS") {
                None => chrono::TimeDelta::days(90),
                Some(raw) => raw
                    .parse::<i64>()
                    .ok()
                    .filter(|days| (0..=3_650).contains(days))
                    .map(chrono::TimeDelta::days)
                    .ok_or_else(|| ConfigError::AccessLogRetention(raw.to_owned()))?,
            },
            tls: match (from_env("TLS_CERT_FILE"), from_env("TLS_KEY_FILE")) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert_file: PathBuf::from(cert),
                    key_file: PathBuf::from(key),
                }),
                (None, None) => None,
                _ => return Err(ConfigError::PartialTls),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_keeps_90_days_by_default_and_none_at_zero() {
        let load = |days: Option<&str>| {
            let env: HashMap<String, String> = days
                .map(|days| ("ACCESS_LOG_RETENTION_DAYS".to_owned(), days.to_owned()))
                .into_iter()
                .collect();
            Settings::load(&ServeFlags::default(), &env)
                .map(|settings| settings.access_log_retention)
        };
        assert_eq!(load(None).unwrap(), chrono::TimeDelta::days(90));
        assert_eq!(load(Some("0")).unwrap(), chrono::TimeDelta::zero());
        assert!(load(Some("3651")).is_err());
        assert!(load(Some("-1")).is_err());
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_give_an_embedded_store_under_data() {
        let settings = Settings::load(&ServeFlags::default(), &env(&[])).unwrap();
        assert_eq!(settings.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.store.url.endpoint(), "rocksdb://./data/rocksdb");
        assert!(settings.store.username.is_none());
        assert_eq!(settings.store.memory.block_cache_bytes, 256 * MIB);
        assert_eq!(settings.store.memory.memtable_bytes, 64 * MIB);
        assert_eq!(settings.store.memory.contact_cache_bytes, 256 * MIB);
        assert_eq!(settings.index_writer_bytes, 64 * MIB);
        let sized = Settings::load(
            &ServeFlags::default(),
            &env(&[
                ("STORE_CACHE_MB", "32"),
                ("INDEX_WRITER_MB", "20"),
                ("CONTACT_CACHE_MB", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(sized.store.memory.block_cache_bytes, 32 * MIB);
        assert_eq!(sized.store.memory.contact_cache_bytes, 0);
        assert_eq!(sized.index_writer_bytes, 20 * MIB);
        assert_eq!(
            Settings::load(&ServeFlags::default(), &env(&[("INDEX_WRITER_MB", "2")]))
                .unwrap_err()
                .to_string(),
            "INDEX_WRITER_MB `2` must be a whole number of MiB, at least 16"
        );
    }

    #[test]
    fn flags_override_env() {
        let flags = ServeFlags {
            listen_addr: Some("0.0.0.0:9000".into()),
            ..ServeFlags::default()
        };
        let settings = Settings::load(
            &flags,
            &env(&[
                ("LISTEN_ADDR", "127.0.0.1:1"),
                ("DATA_DIR", "/srv/q"),
                ("DATABASE_URL", "mem://"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.data_dir, PathBuf::from("/srv/q"));
        assert_eq!(settings.store.url, DatabaseUrl::Memory);
    }

    #[test]
    fn data_dir_moves_the_default_store() {
        let settings =
            Settings::load(&ServeFlags::default(), &env(&[("DATA_DIR", "/tmp/x")])).unwrap();
        assert_eq!(
            settings.store.url,
            DatabaseUrl::RocksDb(PathBuf::from("/tmp/x/rocksdb"))
        );
    }

    #[test]
    fn an_earlier_surrealkv_store_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("store")).unwrap();
        let data_dir = dir.path().display().to_string();
        let settings =
            Settings::load(&ServeFlags::default(), &env(&[("DATA_DIR", &data_dir)])).unwrap();
        assert_eq!(
            settings.store.url,
            DatabaseUrl::SurrealKv(dir.path().join("store"))
        );
        assert_eq!(
            DatabaseUrl::parse("rocksdb:///srv/q").unwrap(),
            DatabaseUrl::RocksDb(PathBuf::from("/srv/q"))
        );
        assert_eq!(
            DatabaseUrl::parse("surrealkv:///srv/q").unwrap(),
            DatabaseUrl::SurrealKv(PathBuf::from("/srv/q"))
        );
    }

    #[test]
    fn remote_store_with_credentials() {
        let settings = Settings::load(
            &ServeFlags::default(),
            &env(&[
                ("DATABASE_URL", "ws://surrealdb:8000"),
                ("SURREAL_USER", "root"),
                ("SURREAL_PASS", "pw"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.store.url,
            DatabaseUrl::Remote("ws://surrealdb:8000".into())
        );
        assert_eq!(settings.store.username.as_deref(), Some("root"));
        assert!(
            !format!("{settings:?}").contains("pw\""),
            "password printed: {settings:?}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load(&ServeFlags::default(), &env(pairs)).unwrap_err()
        };
        assert_eq!(
            load(&[("LISTEN_ADDR", "localhost")]).to_string(),
            "LISTEN_ADDR `localhost` is not an IP:PORT address, e.g. `127.0.0.1:8080`"
        );
        assert_eq!(
            load(&[("DATABASE_URL", "postgres://x")]).to_string(),
            "DATABASE_URL `postgres://x` is not supported; use mem://, rocksdb://PATH, surrealkv://PATH, ws://HOST:PORT or wss://HOST:PORT"
        );
        assert_eq!(
            load(&[("SURREAL_USER", "root")]),
            ConfigError::PartialCredentials
        );
        assert_eq!(
            load(&[("INDEX_COMMIT_DELAY_MS", "soon")]),
            ConfigError::CommitDelay("soon".into())
        );
        assert_eq!(
            load(&[("IDENTITY_SECRET", "short")]),
            ConfigError::IdentitySecret
        );
        assert_eq!(
            load(&[("MODE", "staging")]).to_string(),
            "MODE `staging` must be `development` or `production`"
        );
        assert_eq!(
            load(&[("RATE_LIMIT_PER_SECOND", "lots")]).to_string(),
            "RATE_LIMIT_PER_SECOND `lots` must be a whole number"
        );
    }

    #[test]
    fn production_turns_introspection_off_unless_asked() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load(&ServeFlags::default(), &env(pairs))
                .unwrap()
                .api
        };
        assert!(load(&[]).introspection);
        assert!(!load(&[("MODE", "production")]).introspection);
        assert!(load(&[("MODE", "production"), ("INTROSPECTION", "true")]).introspection);
        let api = load(&[
            ("RATE_LIMIT_PER_SECOND", "5"),
            ("ADMIN_API_KEY", "s3cret-admin-key-0123456789"),
        ]);
        assert_eq!((api.rate_limit_per_second, api.rate_limit_burst), (5, 10));
        assert_eq!(
            (api.auth_failures_per_second, api.auth_failures_burst),
            (5, 20)
        );
        assert_eq!(api.client_address_header, None);
        let proxied = load(&[("CLIENT_ADDRESS_HEADER", "X-Forwarded-For")]);
        assert_eq!(
            proxied.client_address_header.as_deref(),
            Some("x-forwarded-for")
        );
        assert!(
            !format!("{api:?}").contains("s3cret"),
            "secret printed: {api:?}"
        );
    }

    #[test]
    fn allowed_origins_are_origins() {
        let origins = |raw: &str| {
            Settings::load(&ServeFlags::default(), &env(&[("ALLOWED_ORIGINS", raw)]))
                .map(|settings| settings.api.allowed_origins)
        };
        assert_eq!(
            origins("https://app.example.com, http://localhost:5173/").unwrap(),
            AllowedOrigins::List(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
        assert_eq!(origins("*").unwrap(), AllowedOrigins::Any);
        assert_eq!(origins(" ").unwrap(), AllowedOrigins::None);
        let default = Settings::load(&ServeFlags::default(), &env(&[])).unwrap();
        assert_eq!(default.api.allowed_origins, AllowedOrigins::None);
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "https://*.example.com",
            "*, https://a.example",
        ] {
            let error = origins(bad).unwrap_err().to_string();
            assert!(error.contains("scheme://host"), "{bad}: {error}");
        }
    }
}
