//! HTTPS and WSS (`TLS_CERT_FILE`, `TLS_KEY_FILE`): a listener that hands the HTTP server
//! connections already through their TLS handshake, with the same router, limits and
//! WebSocket path as plain HTTP.
//!
//! - Who may use it: anyone who can reach the port, as with plain HTTP; what a request may do
//!   is decided by the same gate after the handshake.
//! - What it bounds: a handshake has [`HANDSHAKE_TIMEOUT`] (a client that opens a connection
//!   and says nothing holds a slot that long at most), and at most [`MAX_HANDSHAKES`] run at
//!   once; further connections wait in the kernel's backlog.
//! - Renewal: the files are read again every [`RELOAD_INTERVAL`] and on SIGHUP; a changed pair
//!   that parses is served to the next handshake, a broken one is logged and the last good
//!   certificate stays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::config::TlsFiles;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes under way at once.
pub const MAX_HANDSHAKES: usize = 1_024;
/// How often the certificate files are read again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Why the certificate files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("`{path}` holds no PEM {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
    },
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key).
    #[error("the certificate and key cannot be served: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate the next handshake gets, replaced when the files change.
struct Certificates {
    files: TlsFiles,
    /// The contents the current configuration was made from (to notice a change).
    loaded: RwLock<(Vec<u8>, Vec<u8>)>,
    config: RwLock<Arc<ServerConfig>>,
}

impl Certificates {
    fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let (cert, key) = read_pair(&files)?;
        let config = server_config(&files, &cert, &key)?;
        Ok(Self {
            files,
            loaded: RwLock::new((cert, key)),
            config: RwLock::new(Arc::new(config)),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.config.read() {
            Ok(config) => Arc::clone(&config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the files again and serves them when they changed and parse; `Ok(true)` when
    /// a new certificate is served.
    fn reload(&self) -> Result<bool, TlsError> {
        let (cert, key) = read_pair(&self.files)?;
        let unchanged = self
            .loaded
            .read()
            .is_ok_and(|loaded| loaded.0 == cert && loaded.1 == key);
        if unchanged {
            return Ok(false);
        }
        let config = server_config(&self.files, &cert, &key)?;
        if let Ok(mut current) = self.config.write() {
            *current = Arc::new(config);
        }
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = (cert, key);
        }
        Ok(true)
    }

    /// Reloads every [`RELOAD_INTERVAL`] and on SIGHUP, for as long as the listener lives.
    async fn follow(self: Arc<Self>) {
        let mut hangups = hangups();
        let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let asked = tokio::select! {
                _ = ticks.tick() => false,
                Some(()) = next_hangup(&mut hangups) => true,
            };
            match self.reload() {
                Ok(true) => {
                    info!(cert = %self.files.cert_file.display(), "serving a renewed TLS certificate")
                }
                Ok(false) if asked => info!("SIGHUP: the TLS certificate files are unchanged"),
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, "the TLS certificate files cannot be served; the last good certificate stays")
                }
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}

fn read_pair(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    Ok((read(&files.cert_file)?, read(&files.key_file)?))
}

fn server_config(files: &TlsFiles, cert: &[u8], key: &[u8]) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert_file.clone(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| TlsError::Pem {
        path: files.key_file.clone(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // The server speaks HTTP/1.1 (WebSocket upgrades included).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts TCP connections and completes their TLS handshakes in the background, handing the
/// HTTP server only the connections that finished theirs (a slow handshake delays no other).
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    tasks: [JoinHandle<()>; 2],
}

impl TlsListener {
    /// Serves TLS on `listener` with the certificate files `files` (read now: a pair that
    /// cannot be served fails here, before the service answers anything).
    pub fn new(listener: TcpListener, files: TlsFiles) -> Result<Self, TlsError> {
        let certificates = Arc::new(Certificates::load(files)?);
        let local = listener.local_addr().map_err(|source| TlsError::Read {
            path: PathBuf::from("listener"),
            source,
        })?;
        let (sender, incoming) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, Arc::clone(&certificates), sender));
        let following = tokio::spawn(certificates.follow());
        Ok(Self {
            incoming,
            local,
            tasks: [accepting, following],
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                debug!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(certificates.current());
        let handshaken = handshaken.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = handshaken.send((stream, address)).await;
                }
                Ok(Err(error)) => debug!(%address, %error, "TLS handshake failed"),
                Err(_) => debug!(%address, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it only does when aborted): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
