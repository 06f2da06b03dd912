//! Identity tokens: JWTs minted by the business's backend that prove a user id and vouch for
//! the claims beside it. HS256 with the workspace's identity secrets, RS256 or ES256 with its
//! public keys (PEM, or a JWKS URL fetched and cached). Signatures and the time claims are
//! checked by the `jsonwebtoken` crate; this module picks the keys a token may be checked
//! against (by its algorithm's family, so a public key is never used as an HMAC secret), bounds
//! its lifetime and reads its claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value as Json};

use super::contacts::PatchInput;
use super::outbound;
use crate::domain::{
    ConsentStatement, DomainError, Email, FieldChange, Phone, Refusal, Text, WorkspaceId,
    WorkspaceSettings, parse_consents_json,
};
use crate::service::error::ServiceError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 60;
/// Longest identity token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How long a fetched JWKS document is used before it is fetched again.
const JWKS_TTL: StdDuration = StdDuration::from_secs(600);
/// Shortest time between two fetches of one JWKS URL (an unknown `kid` refetches).
const JWKS_REFETCH_AFTER: StdDuration = StdDuration::from_secs(30);
/// How long a JWKS fetch may take.
const JWKS_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The user id (`sub`, else `user_id`).
    pub user_id: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// The token's id, if it has one (replays of it are refused).
    pub jti: Option<String>,
    /// The claimed fields and attributes, to be written as verified.
    pub claims: PatchInput,
    /// The consents it states (`consents`: purpose names to true or false).
    pub consents: Vec<ConsentStatement>,
}

/// Verifies identity tokens against a workspace's settings; holds the JWKS cache.
#[derive(Clone)]
pub struct TokenVerifier {
    http: reqwest::Client,
    allow_private: bool,
    jwks: Arc<Mutex<HashMap<String, CachedJwks>>>,
}

struct CachedJwks {
    keys: Arc<JwkSet>,
    fetched_at: Instant,
}

/// Makes the pure-Rust (RustCrypto) backend `jsonwebtoken`'s process-wide provider. SurrealDB
/// turns on the crate's aws-lc backend as well, and with two backends compiled in the crate
/// needs an explicit choice (without one, every signature check panics, SurrealDB's included).
pub fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Err only if another provider was installed first, which is as good.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

impl TokenVerifier {
    /// A verifier with an empty JWKS cache, fetching JWKS documents through the outbound
    /// client (no redirects, bounded time, public addresses only unless `allow_private`).
    pub fn new(allow_private: bool) -> Self {
        install_crypto_provider();
        let http = outbound::client(allow_private, JWKS_TIMEOUT).unwrap_or_default();
        Self {
            http,
            allow_private,
            jwks: Arc::default(),
        }
    }

    /// Whether JWKS documents may come from private and plain-http addresses.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Verifies `token` for `workspace` at `now`: its signature with the key of its
    /// algorithm's family, `exp` (required, at most the workspace's token lifetime ahead),
    /// `nbf`, `aud` (when present it must name the workspace), and reads its claims.
    /// A token that is not a JWT at all is INVALID_INPUT; every other refusal is
    /// IDENTITY_NOT_VERIFIED with its [`Refusal`].
    pub async fn verify(
        &self,
        settings: &WorkspaceSettings,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, ServiceError> {
        let header = read_header(token)?;
        let algorithm = match header.alg.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(Refusal::UnsupportedAlgorithm.error(format!(
                    "identity tokens are signed with HS256, RS256 or ES256; this one says `{other}`"
                )));
            }
        };
        let keys = self
            .keys_for(settings, algorithm, header.kid.as_deref())
            .await?;
        let validation = validation(algorithm, &settings.workspace);
        let mut last_refusal = None;
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Json>>(token, key, &validation) {
                Ok(data) => return read_claims(settings, data.claims, now),
                Err(error) => {
                    let refusal = refusal_of(error.kind());
                    if refusal.0 != Refusal::BadSignature {
                        // The signature verified: the token is refused for what it says.
                        return Err(refusal.0.error(refusal.1));
                    }
                    last_refusal = Some(refusal);
                }
            }
        }
        let (reason, message) = last_refusal.unwrap_or((
            Refusal::BadSignature,
            "no configured key verifies this token".to_owned(),
        ));
        Err(reason.error(message))
    }

    /// The keys a token signed with `algorithm` may be checked against.
    async fn keys_for(
        &self,
        settings: &WorkspaceSettings,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<DecodingKey>, ServiceError> {
        if algorithm == Algorithm::HS256 {
            let secrets: Vec<DecodingKey> = settings
                .identity_secrets()
                .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes()))
                .collect();
            if secrets.is_empty() {
                return Err(Refusal::NoKey.error(
                    "this workspace has no identity secret for HS256 tokens; set one with `setIdentityVerification`",
                ));
            }
            return Ok(secrets);
        }
        let mut keys: Vec<DecodingKey> = settings
            .public_keys_pem
            .iter()
            .filter_map(|pem| public_key(pem, algorithm))
            .collect();
        if let Some(url) = &settings.jwks_url {
            keys.extend(self.jwks_keys(url, algorithm, kid).await?);
        }
        if keys.is_empty() {
            return Err(Refusal::NoKey.error(format!(
                "this workspace has no public key for {algorithm:?} tokens; register one with `setIdentityVerification(input: {{publicKeysPem}})` or a `jwksUrl`"
            )));
        }
        Ok(keys)
    }

    /// The keys of the JWKS at `url` for `algorithm` (and `kid`, when the token names one),
    /// fetched when the cached copy is stale or lacks `kid`.
    async fn jwks_keys(
        &self,
        url: &str,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<DecodingKey>, ServiceError> {
        let cached = self.cached_jwks(url);
        let knows_kid = |set: &JwkSet| kid.is_none_or(|kid| set.find(kid).is_some());
        let set = match cached {
            Some((set, age)) if age < JWKS_TTL && (knows_kid(&set) || age < JWKS_REFETCH_AFTER) => {
                set
            }
            stale => match self.fetch_jwks(url).await {
                Ok(set) => set,
                // A fetch failure falls back on the copy we have, if any.
                Err(error) => match stale {
                    Some((set, _)) => set,
                    None => return Err(error),
                },
            },
        };
        Ok(set
            .keys
            .iter()
            .filter(|jwk| kid.is_none_or(|kid| jwk.common.key_id.as_deref() == Some(kid)))
            .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
            .filter(|key| key_fits(key, algorithm))
            .collect())
    }

    fn cached_jwks(&self, url: &str) -> Option<(Arc<JwkSet>, StdDuration)> {
        let cache = self
            .jwks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache
            .get(url)
            .map(|entry| (Arc::clone(&entry.keys), entry.fetched_at.elapsed()))
    }

    async fn fetch_jwks(&self, url: &str) -> Result<Arc<JwkSet>, ServiceError> {
        let unreachable = |detail: String| {
            Refusal::NoKey.error(format!(
                "the workspace's JWKS at {url} could not be read ({detail})"
            ))
        };
        // Stored URLs were checked when set; checked again under today's rules.
        WorkspaceSettings::parse_jwks_url(url, self.allow_private)
            .map_err(|error| unreachable(error.to_string()))?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| unreachable(outbound::describe(&error)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(unreachable(format!(
                "it answered {status}; redirects are not followed"
            )));
        }
        if !status.is_success() {
            return Err(unreachable(format!("it answered {status}")));
        }
        let body = outbound::read_capped(response, MAX_JWKS_BYTES)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|error| unreachable(format!("not a JWKS document: {error}")))?;
        let set = Arc::new(set);
        let mut cache = self
            .jwks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.insert(
            url.to_owned(),
            CachedJwks {
                keys: Arc::clone(&set),
                fetched_at: Instant::now(),
            },
        );
        Ok(set)
    }
}

/// Checks PEM public keys for `setIdentityVerification`: each an RSA or P-256 public key.
pub fn check_public_keys(pems: &[String]) -> Result<(), DomainError> {
    for (index, pem) in pems.iter().enumerate() {
        let usable = public_key(pem, Algorithm::RS256).is_some()
            || public_key(pem, Algorithm::ES256).is_some();
        if !usable {
            return Err(DomainError::invalid(
                "publicKeysPem",
                format!(
                    "key {} is not a PEM RSA or P-256 public key (-----BEGIN PUBLIC KEY-----)",
                    index + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The key of `pem` for `algorithm`'s family, if it is one.
fn public_key(pem: &str, algorithm: Algorithm) -> Option<DecodingKey> {
    let key = match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()).ok()?,
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()).ok()?,
        _ => return None,
    };
    // The PEM parsers check the framing; a key that cannot verify anything is no key.
    key_fits(&key, algorithm).then_some(key)
}

/// Whether `key` belongs to `algorithm`'s family (of the three accepted algorithms).
fn key_fits(key: &DecodingKey, algorithm: Algorithm) -> bool {
    let family = match algorithm {
        Algorithm::HS256 => AlgorithmFamily::Hmac,
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return false,
    };
    key.family() == family
}

/// The checks `jsonwebtoken` runs: one algorithm, `exp` required, `nbf` when present, `aud`
/// when present must be the workspace, [`CLOCK_LEEWAY_SECS`] of skew.
fn validation(algorithm: Algorithm, workspace: &WorkspaceId) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_audience(&[workspace.as_str()]);
    validation.set_required_spec_claims(&["exp"]);
    validation
}

/// The header fields read before choosing keys.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Reads the header of a compact JWS; INVALID_INPUT when `token` is not one.
fn read_header(token: &str) -> Result<Header, ServiceError> {
    let not_a_jwt = || {
        ServiceError::invalid(
            "identityToken",
            "`identityToken` is not a JWT (three base64url parts separated by dots)",
        )
    };
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ServiceError::invalid(
            "identityToken",
            format!("`identityToken` is longer than {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_jwt());
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| not_a_jwt())?;
    serde_json::from_slice(&bytes).map_err(|_| not_a_jwt())
}

/// The refusal (and its message) for a `jsonwebtoken` error.
fn refusal_of(kind: &ErrorKind) -> (Refusal, String) {
    match kind {
        ErrorKind::ExpiredSignature => (Refusal::Expired, "the identity token has expired".into()),
        ErrorKind::ImmatureSignature => (
            Refusal::NotYetValid,
            "the identity token is not valid yet (`nbf`)".into(),
        ),
        ErrorKind::InvalidAudience => (
            Refusal::WrongAudience,
            "the identity token's `aud` is not this workspace".into(),
        ),
        ErrorKind::MissingRequiredClaim(claim) => (
            Refusal::MissingClaim,
            format!("the identity token has no `{claim}` claim"),
        ),
        ErrorKind::InvalidClaimFormat(claim) => (
            Refusal::InvalidClaim,
            format!("the identity token's `{claim}` claim has the wrong type"),
        ),
        ErrorKind::InvalidAlgorithm => (
            Refusal::UnsupportedAlgorithm,
            "the identity token's algorithm does not match the key".into(),
        ),
        ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => (
            Refusal::InvalidClaim,
            "the identity token's claims are not a JSON object".into(),
        ),
        _ => (
            Refusal::BadSignature,
            "no configured secret or key verifies the identity token's signature".into(),
        ),
    }
}

/// Reads the claims of a token whose signature and time claims verified.
fn read_claims(
    settings: &WorkspaceSettings,
    mut claims: Map<String, Json>,
    now: DateTime<Utc>,
) -> Result<VerifiedToken, ServiceError> {
    let user_id = match (claims.remove("sub"), claims.remove("user_id")) {
        (Some(Json::String(sub)), _) | (None, Some(Json::String(sub)))
            if !sub.trim().is_empty() =>
        {
            sub
        }
        (None, None) => {
            return Err(Refusal::MissingClaim
                .error("the identity token has no `sub` (or `user_id`) claim naming the user"));
        }
        _ => {
            return Err(Refusal::InvalidClaim
                .error("the identity token's `sub` (or `user_id`) must be a non-empty string"));
        }
    };
    let exp = claims
        .remove("exp")
        .and_then(|exp| exp.as_i64())
        .ok_or_else(|| Refusal::InvalidClaim.error("`exp` must be a whole number of seconds"))?;
    let expires_at = DateTime::from_timestamp(exp, 0)
        .ok_or_else(|| Refusal::InvalidClaim.error("`exp` is out of range"))?;
    let longest = settings.token_max_lifetime()
        + chrono::Duration::seconds(i64::try_from(CLOCK_LEEWAY_SECS).unwrap_or(60));
    if expires_at.signed_duration_since(now) > longest {
        return Err(Refusal::LifetimeTooLong.error(format!(
            "the identity token expires in more than {} s, the workspace's longest token lifetime",
            settings.token_max_lifetime().num_seconds()
        )));
    }
    match claims.remove("iat") {
        None => {}
        Some(iat) => {
            let iat = iat.as_i64().ok_or_else(|| {
                Refusal::InvalidClaim.error("`iat` must be a whole number of seconds")
            })?;
            let leeway = i64::try_from(CLOCK_LEEWAY_SECS).unwrap_or(60);
            if iat > now.timestamp().saturating_add(leeway) {
                return Err(Refusal::NotYetValid.error(format!(
                    "the identity token says it was issued in the future (`iat` more than {leeway} s ahead of this server's clock)"
                )));
            }
        }
    }
    let jti = match claims.remove("jti") {
        None => None,
        Some(Json::String(jti)) if !jti.is_empty() && jti.len() <= 256 => Some(jti),
        Some(_) => {
            return Err(Refusal::InvalidClaim.error("`jti` must be a string of 1 to 256 bytes"));
        }
    };
    let consents = match claims.remove("consents") {
        None => Vec::new(),
        Some(value) => parse_consents_json("consents", &value)
            .map_err(|error| Refusal::InvalidClaim.error(error.to_string()))?,
    };
    Ok(VerifiedToken {
        user_id,
        expires_at,
        jti,
        claims: claimed_fields(claims)?,
        consents,
    })
}

/// The fields and attributes a token vouches for.
fn claimed_fields(mut claims: Map<String, Json>) -> Result<PatchInput, ServiceError> {
    let mut text = |name: &str| -> Result<Option<String>, ServiceError> {
        match claims.remove(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(value)) => Ok(Some(value)),
            Some(_) => Err(Refusal::InvalidClaim.error(format!("`{name}` must be a string"))),
        }
    };
    let email = text("email")?;
    let name = text("name")?;
    let phone = text("phone")?;
    let company = text("company")?;
    let mut input = PatchInput {
        email: change(email.map(|v| Email::parse(&v)).transpose()?),
        name: change(name.map(|v| Text::parse("name", &v)).transpose()?),
        phone: change(phone.map(|v| Phone::parse(&v)).transpose()?),
        company: change(company.map(|v| Text::parse("company", &v)).transpose()?),
        ..PatchInput::default()
    };
    match claims.remove("attributes") {
        None | Some(Json::Null) => {}
        Some(Json::Object(attributes)) => input.attributes = attributes,
        Some(_) => {
            return Err(Refusal::InvalidClaim.error("`attributes` must be a JSON object"));
        }
    }
    Ok(input)
}

fn change<T>(value: Option<T>) -> FieldChange<T> {
    value.map_or(FieldChange::Keep, FieldChange::Set)
}
