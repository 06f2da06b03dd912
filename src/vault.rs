//! Encryption at rest for sensitive attribute values (AES-256-GCM) and their blind index
//! (HMAC-SHA256 of the normalised value), both under keys derived (HKDF-SHA256) from one
//! 32-byte master key: `ENCRYPTION_KEY`, or a key file made under `DATA_DIR` at first start.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::{
    AttributeName, SealError, SealedValue, Sealer, WorkspaceId, normalise_sensitive,
};
use crate::private_file::{self, IfExists};

/// File under `DATA_DIR` holding the master key when `ENCRYPTION_KEY` is not set.
pub const KEY_FILE: &str = "encryption.key";
/// Version tag of sealed values, so that keys and formats can rotate.
const SEALED_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

/// Why a key could not be loaded or a value opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// `ENCRYPTION_KEY` (or the key file) is not base64 of 32 bytes.
    #[error("{0} must be base64 of exactly 32 bytes")]
    BadKey(&'static str),
    /// The key file could not be read or written.
    #[error("cannot use the key file `{path}`: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// No randomness was available.
    #[error("no randomness available: {0}")]
    Random(#[source] getrandom::Error),
    /// A sealed value is malformed, or was sealed under another key or for another place.
    #[error("a sealed value cannot be opened (wrong key, or tampered with)")]
    Open,
}

impl VaultError {
    /// What a [`Sealer`] reports of a failed seal or open.
    fn sealing(self) -> SealError {
        match self {
            Self::Open => SealError::CannotOpen,
            _ => SealError::NoRandomness,
        }
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `ENCRYPTION_KEY`.
    Configured,
    /// The key file under `DATA_DIR` (made now when `created`).
    File {
        /// Whether this start made it.
        created: bool,
    },
    /// Made up for this process only (in-memory stores).
    Ephemeral,
}

/// The encryption and blind-index keys.
pub struct Vault {
    cipher: Aes256Gcm,
    blind_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// Derives both keys from `master`.
    pub fn from_master(master: &[u8; 32]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, master);
        let mut encryption_key = [0u8; 32];
        let mut blind_key = [0u8; 32];
        // 32-byte outputs are always within HKDF-SHA256's limit.
        let _ = hkdf.expand(b"qwry-contacts aes-256-gcm v1", &mut encryption_key);
        let _ = hkdf.expand(b"qwry-contacts blind index v1", &mut blind_key);
        Self {
            cipher: Aes256Gcm::new(&encryption_key.into()),
            blind_key,
        }
    }

    /// Parses base64 of 32 bytes (`what` names the source in errors).
    pub fn parse_master(raw: &str, what: &'static str) -> Result<Self, VaultError> {
        let bytes = STANDARD
            .decode(raw.trim())
            .map_err(|_| VaultError::BadKey(what))?;
        let master: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadKey(what))?;
        Ok(Self::from_master(&master))
    }

    /// The configured key, else the key file under `data_dir` (made on first start), else (no
    /// data dir: an in-memory store) a key for this process only.
    pub fn load(
        configured: Option<&SecretString>,
        data_dir: Option<&Path>,
    ) -> Result<(Self, KeySource), VaultError> {
        if let Some(raw) = configured {
            let vault = Self::parse_master(raw.expose_secret(), "ENCRYPTION_KEY")?;
            return Ok((vault, KeySource::Configured));
        }
        let Some(data_dir) = data_dir else {
            return Ok((Self::from_master(&random_key()?), KeySource::Ephemeral));
        };
        let path = data_dir.join(KEY_FILE);
        let file_error = |source| VaultError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(raw) => {
                let vault = Self::parse_master(&raw, "the encryption key file")?;
                Ok((vault, KeySource::File { created: false }))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let master = random_key()?;
                private_file::write(&path, &STANDARD.encode(master), IfExists::Fail)
                    .map_err(file_error)?;
                Ok((
                    Self::from_master(&master),
                    KeySource::File { created: true },
                ))
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Encrypts `plaintext` for the place named by `context` (bound as associated data, so a
    /// value copied to another attribute or workspace does not open).
    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(VaultError::Random)?;
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| VaultError::Open)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// Decrypts what [`Vault::seal`] made for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, VaultError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(VaultError::Open)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| VaultError::Open)?;
        if bytes.len() < NONCE_BYTES {
            return Err(VaultError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| VaultError::Open)?;
        String::from_utf8(plaintext).map_err(|_| VaultError::Open)
    }

    /// The blind-index token of `value` in `context`: hex HMAC-SHA256 of the normalised value
    /// (trimmed, lower-cased). Equal values give equal tokens; tokens reveal nothing else.
    pub fn blind(&self, context: &str, value: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.blind_key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(context.as_bytes());
        mac.update(&[0]);
        mac.update(normalise_sensitive(value).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Where a sensitive value lives: its workspace and attribute.
pub fn sealing_context(workspace: &WorkspaceId, attribute: &str) -> String {
    format!("{workspace}\u{0}{attribute}")
}

impl Sealer for Vault {
    fn seal(
        &self,
        workspace: &WorkspaceId,
        attribute: &AttributeName,
        plaintext: &str,
    ) -> Result<SealedValue, SealError> {
        let context = sealing_context(workspace, attribute.as_str());
        Ok(SealedValue {
            ciphertext: Vault::seal(self, &context, plaintext).map_err(VaultError::sealing)?,
            blind: self.blind(&context, plaintext),
        })
    }

    fn blind(&self, workspace: &WorkspaceId, attribute: &str, value: &str) -> String {
        Vault::blind(self, &sealing_context(workspace, attribute), value)
    }

    fn open(
        &self,
        workspace: &WorkspaceId,
        attribute: &str,
        sealed: &SealedValue,
    ) -> Result<String, SealError> {
        Vault::open(
            self,
            &sealing_context(workspace, attribute),
            &sealed.ciphertext,
        )
        .map_err(VaultError::sealing)
    }

    fn seal_text(
        &self,
        workspace: &WorkspaceId,
        place: &str,
        text: &str,
    ) -> Result<String, SealError> {
        Vault::seal(self, &sealing_context(workspace, place), text).map_err(VaultError::sealing)
    }

    fn open_text(
        &self,
        workspace: &WorkspaceId,
        place: &str,
        sealed: &str,
    ) -> Result<String, SealError> {
        Vault::open(self, &sealing_context(workspace, place), sealed).map_err(VaultError::sealing)
    }
}

fn random_key() -> Result<[u8; 32], VaultError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(VaultError::Random)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_master(&[7u8; 32])
    }

    #[test]
    fn sealed_values_open_only_in_their_place() {
        let vault = vault();
        let sealed = vault.seal("acme\0ssn", "123-45-6789").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("123"));
        assert_eq!(vault.open("acme\0ssn", &sealed).unwrap(), "123-45-6789");
        assert!(
            vault.open("acme\0other", &sealed).is_err(),
            "context is bound"
        );
        assert!(
            Vault::from_master(&[8u8; 32])
                .open("acme\0ssn", &sealed)
                .is_err()
        );
        assert_ne!(
            sealed,
            vault.seal("acme\0ssn", "123-45-6789").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn blind_tokens_match_normalised_equals_only() {
        let vault = vault();
        let token = vault.blind("acme\0ssn", "AB-12");
        assert_eq!(token, vault.blind("acme\0ssn", " ab-12 "));
        assert_ne!(token, vault.blind("acme\0ssn", "ab-13"));
        assert_ne!(
            token,
            vault.blind("other\0ssn", "AB-12"),
            "workspaces differ"
        );
        assert_eq!(token.len(), 64);
    }

    #[test]
    fn keys_come_from_the_environment_or_a_private_file() {
        let configured = SecretString::from(STANDARD.encode([1u8; 32]));
        let (_, source) = Vault::load(Some(&configured), None).unwrap();
        assert_eq!(source, KeySource::Configured);
        let short = SecretString::from(STANDARD.encode([1u8; 16]));
        assert!(Vault::load(Some(&short), None).is_err());

        let dir = tempfile::tempdir().unwrap();
        let (first, source) = Vault::load(None, Some(dir.path())).unwrap();
        assert_eq!(source, KeySource::File { created: true });
        let (again, source) = Vault::load(None, Some(dir.path())).unwrap();
        assert_eq!(source, KeySource::File { created: false });
        let sealed = first.seal("c", "secret").unwrap();
        assert_eq!(
            again.open("c", &sealed).unwrap(),
            "secret",
            "same key after restart"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
