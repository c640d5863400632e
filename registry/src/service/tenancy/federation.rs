//! Keyless (federated) robot logins: a workload presents an OIDC ID token from an issuer the
//! robot trusts (`[{issuer, subject}]`, set through `.../robots/{name}/federation`) and receives
//! a robot token valid for one hour (`GET /oauth2/federation/robot/token`, basic auth
//! `owner+robot:<ID token>`).
//!
//! The ID token's signature is verified against the issuer's published keys: its
//! `/.well-known/openid-configuration` names the `jwks_uri`, whose JWKS is fetched over HTTP and
//! cached for a few minutes (fetched again when a token names an unknown key). ES256 and RS256
//! are supported. The issuer, the subject and the expiry are checked too.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::db;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Principal, RobotRef};

/// How long fetched keys are trusted before fetching them again.
const JWKS_TTL_MS: i64 = 5 * 60 * 1000;
/// Clock skew allowed on `exp`.
const LEEWAY_S: i64 = 30;

/// Why an exchange was refused; the message is shown to the caller.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] crate::service::Internal),
}

impl From<crate::db::DbError> for FederationError {
    fn from(e: crate::db::DbError) -> Self {
        FederationError::Internal(crate::service::Internal::Db(e))
    }
}

fn refused(message: impl Into<String>) -> FederationError {
    FederationError::Refused(message.into())
}

#[derive(Clone, Debug, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
}

/// Issuers' signing keys, fetched over HTTP and cached.
#[derive(Default)]
pub struct JwksCache {
    /// Built on first use: its TLS root store costs memory that most installations never need.
    http: std::sync::OnceLock<reqwest::Client>,
    keys: Mutex<HashMap<String, (i64, Vec<Jwk>)>>,
}

impl JwksCache {
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
    }

    async fn fetch(&self, issuer: &str) -> Result<Vec<Jwk>, FederationError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let unreachable = |e: reqwest::Error| {
            refused(format!(
                "Invalid token: cannot read the keys of issuer {issuer}: {e}"
            ))
        };
        let discovery: Discovery = self
            .http()
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        let jwks: Jwks = self
            .http()
            .get(&discovery.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        Ok(jwks.keys)
    }

    /// The issuer's keys; fetched again when stale or when `kid` is not among them.
    async fn keys(
        &self,
        issuer: &str,
        kid: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Jwk>, FederationError> {
        let mut cache = self.keys.lock().await;
        if let Some((fetched, keys)) = cache.get(issuer) {
            let fresh = now_ms - fetched < JWKS_TTL_MS;
            let knows_kid = kid.is_none_or(|k| keys.iter().any(|j| j.kid.as_deref() == Some(k)));
            if fresh && knows_kid {
                return Ok(keys.clone());
            }
        }
        let keys = self.fetch(issuer).await?;
        cache.insert(issuer.to_owned(), (now_ms, keys.clone()));
        Ok(keys)
    }
}

fn b64(part: &str) -> Result<Vec<u8>, FederationError> {
    B64.decode(part.trim_end_matches('='))
        .map_err(|_| refused("Invalid token: not a JWT"))
}

fn verify_with(jwk: &Jwk, alg: &str, message: &[u8], signature: &[u8]) -> bool {
    use ring::signature;
    match (alg, jwk.kty.as_str()) {
        ("ES256", "EC") if jwk.crv.as_deref().is_none_or(|c| c == "P-256") => {
            let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
                return false;
            };
            let (Ok(x), Ok(y)) = (B64.decode(x), B64.decode(y)) else {
                return false;
            };
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        ("RS256", "RSA") => {
            let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
                return false;
            };
            let (Ok(n), Ok(e)) = (B64.decode(n), B64.decode(e)) else {
                return false;
            };
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok()
        }
        _ => false,
    }
}

/// Exchanges an ID token for a one-hour robot token.
pub async fn exchange(
    ctx: &Ctx,
    robot_name: &str,
    id_token: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<String, FederationError> {
    if ctx.config.robots_disallow {
        return Err(refused(
            "Robot accounts have been disabled. Please contact your administrator.",
        ));
    }
    if !robot_name.contains('+') {
        return Err(refused("Invalid robot"));
    }
    let robot = db::tenancy::robots::by_name(ctx.db.pool(), robot_name)
        .await?
        .ok_or_else(|| refused("Could not find robot with specified username"))?;
    let config: Vec<quayside_client::FederationEntry> =
        serde_json::from_str(&robot.federation).unwrap_or_default();
    if config.is_empty() {
        return Err(refused("Robot does not have federated login configured"));
    }
    let mut parts = id_token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("Invalid token: not a JWT"));
    };
    let header: Header =
        serde_json::from_slice(&b64(h)?).map_err(|_| refused("Invalid token: bad header"))?;
    let claims: Claims =
        serde_json::from_slice(&b64(p)?).map_err(|_| refused("Invalid token: bad claims"))?;
    let issuer = claims
        .iss
        .clone()
        .ok_or_else(|| refused("Token does not contain issuer"))?;
    let subjects: Vec<&str> = config
        .iter()
        .filter(|c| c.issuer.trim_end_matches('/') == issuer.trim_end_matches('/'))
        .map(|c| c.subject.as_str())
        .collect();
    if subjects.is_empty() {
        return Err(refused(format!(
            "issuer {issuer} not configured for this robot"
        )));
    }
    if !matches!(header.alg.as_str(), "ES256" | "RS256") {
        return Err(refused(format!(
            "Invalid token: unsupported algorithm {}",
            header.alg
        )));
    }
    let now_ms = ctx.now_ms();
    let keys = ctx
        .federation
        .keys(&issuer, header.kid.as_deref(), now_ms)
        .await?;
    let signature = b64(s)?;
    let message = format!("{h}.{p}");
    let verified = keys
        .iter()
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .any(|k| verify_with(k, &header.alg, message.as_bytes(), &signature));
    if !verified {
        return Err(refused("Invalid token: Signature verification failed"));
    }
    match claims.exp {
        Some(exp) if exp + LEEWAY_S > now_ms / 1000 => {}
        Some(_) => return Err(refused("Invalid token: Signature has expired")),
        None => return Err(refused("Invalid token: Token is missing the \"exp\" claim")),
    }
    let subject = claims.sub.unwrap_or_default();
    if !subjects.contains(&subject.as_str()) {
        return Err(refused("Token does not match robot"));
    }
    let robot_ref = RobotRef {
        id: robot.account_id,
        name: robot.name.clone(),
        owner: robot.owner.clone(),
    };
    ctx.audit.record(
        &Caller::new(Principal::Robot(robot_ref.clone()), ip),
        Event::namespace(
            "federated_robot_token_exchange",
            &robot.owner,
            json!({ "subject": subject, "issuer": issuer, "robot": robot.shortname }),
        ),
        now_ms,
    );
    ctx.jwt
        .issue_robot_login(&ctx.db, &robot_ref, now_ms / 1000)
        .await
        .map_err(|e| FederationError::Internal(crate::service::Internal::Other(e.to_string())))
}
