//! Registry bearer tokens (Docker token authentication): compact JWTs signed with the
//! registry's service keys (EdDSA over Ed25519), the key id in the header (`kid`).
//!
//! The token server (`/v2/auth`) decides what a principal may do when it issues a token and
//! writes it into the `access` claim; `/v2` requests then authorize from the claim, after one
//! indexed lookup that the token's account still exists and is enabled.
//! A token is for one audience, this registry's service name ([`Ctx::registry_service`]), and
//! names its account by id: verification refuses any other audience, and the caller
//! ([`super::auth`]) refuses a token whose account is gone or disabled.
//!
//! Rule: a token verifies only with the service key its `kid` names, while that key is a key of
//! service [`INSTANCE_SERVICE`] in the database, approved and unexpired. So keys rotate: a new
//! key signs new tokens, tokens signed before stay valid until they expire, and deleting (or
//! expiring) a key ends every token it signed.
//!
//! The keys: the first is derived from the installation secret (`SECRET_KEY`, shared by every
//! replica), so every replica signs with it without storing it; it is registered as a service
//! key once, on the first start with that secret (deleted, it stays deleted). Keys created
//! through the API for service `quay` have their private key sealed with the installation secret
//! in the database, so every replica can sign with them. Each replica signs with the newest
//! usable key it holds, preferring one that outlives the token. The key set is cached for
//! [`RING_TTL_MS`] (a change on another replica takes effect within it; this replica's own
//! changes call [`Keys::invalidate`]).
//!
//! Verifying an Ed25519 signature costs tens of microseconds, more than the rest of a manifest
//! GET, and clients send the same token with every request of a pull. So a signature that
//! verified is remembered (by the SHA-256 of the whole token, with the kid that signed it) in a
//! bounded map: a later request with the same token skips the signature but still checks that
//! the kid is a usable key of the current key set, and the token's lifetime, so a deleted or
//! expired key ends its tokens exactly as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64STD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::{self, Db, DbError};
use crate::service::{Access, Ctx, Grant, RobotRef, UserRef};

/// How long an issued registry token is valid.
pub const TOKEN_LIFETIME_S: i64 = 3600;
const ISSUER: &str = "quayside";
/// Audience of the short-lived robot tokens handed out for federated (keyless) robot logins.
const ROBOT_AUDIENCE: &str = "quayside-robot-federation";
/// How long a federated robot token is valid.
pub const ROBOT_TOKEN_LIFETIME_S: i64 = 3600;
/// The service whose keys sign this registry's tokens (Quay's `INSTANCE_SERVICE_KEY_SERVICE`).
pub const INSTANCE_SERVICE: &str = "quay";
/// `origin` of the key derived from the installation secret.
pub const ORIGIN_CONFIG: &str = "config";
/// `origin` of keys generated through the API.
pub const ORIGIN_GENERATED: &str = "generated";
/// How long the cached key set is trusted before it is read again.
pub const RING_TTL_MS: i64 = 10_000;
/// An unknown key id makes the key set be read again at most this often.
const RELOAD_MIN_MS: i64 = 1_000;
/// The instance setting that records the registration of a secret-derived key.
const REGISTERED_PREFIX: &str = "service_key_registered:";
/// How many verified tokens are remembered (about 1 KiB each).
const VERIFIED_CAPACITY: usize = 4096;

#[derive(Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: Vec<Access>,
    context: Context,
}

#[derive(Clone, Serialize, Deserialize)]
struct Context {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default)]
    superuser: bool,
    /// A robot's owner namespace (robot tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Who a registry token is for.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Anonymous,
    User(&'a UserRef),
    Robot(&'a RobotRef),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("invalid token signature")]
    BadSignature,
    /// The key the token names is unknown, deleted, unapproved or expired.
    #[error("the token's signing key is not valid")]
    UnknownKey,
    #[error("token has expired")]
    Expired,
    /// The token was issued for another service (its `aud` is not this registry's).
    #[error("token is not for this registry")]
    WrongAudience,
}

/// Why no token could be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Every key of service `quay` the registry holds is deleted, unapproved or expired.
    #[error(
        "no usable registry signing key: create a service key for service \"quay\" (POST /api/v1/superuser/keys)"
    )]
    NoSigningKey,
    #[error("generating a key failed")]
    Crypto,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A key this registry can sign with.
struct Signer {
    kid: String,
    pair: Ed25519KeyPair,
}

/// A key that verifies.
#[derive(Clone)]
struct Verifier {
    public: Vec<u8>,
    expires_ms: Option<i64>,
    approved: bool,
}

impl Verifier {
    fn usable(&self, now_ms: i64) -> bool {
        self.approved && self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

/// The key set as last read from the database.
#[derive(Default, Clone)]
struct Ring {
    /// When it was read; `None`: never, or invalidated.
    loaded_ms: Option<i64>,
    /// When it was last read, even if invalidated since (bounds reloads for unknown kids).
    last_read_ms: Option<i64>,
    keys: HashMap<String, Verifier>,
    /// Usable signing keys, best first: (kid, expiry).
    signers: Vec<(Arc<Signer>, Option<i64>)>,
}

/// A key pair generated for `POST /superuser/keys`.
pub struct GeneratedKey {
    pub kid: String,
    /// The public JWK.
    pub jwk: Value,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
    /// The private key sealed with the installation secret, for keys the registry signs with.
    pub private_sealed: String,
}

pub struct Keys {
    config: Arc<Signer>,
    config_jwk: Value,
    seal: aead::LessSafeKey,
    ring: RwLock<Arc<Ring>>,
    /// Tokens whose signature verified: SHA-256 of the token → (kid, claims).
    verified: Mutex<HashMap<[u8; 32], (String, Claims)>>,
}

/// The RFC 7638 thumbprint of an Ed25519 public key: its key id.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        B64.encode(public)
    );
    B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

fn jwk_of(public: &[u8], kid: &str) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": B64.encode(public), "kid": kid, "alg": "EdDSA", "use": "sig" })
}

/// The public key bytes of a stored JWK (Ed25519 only).
fn public_of_jwk(jwk: &str) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_str(jwk).ok()?;
    if v["kty"] != "OKP" || v["crv"] != "Ed25519" {
        return None;
    }
    B64.decode(v["x"].as_str()?).ok().filter(|k| k.len() == 32)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = B64STD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Keys {
    /// The keys of an installation with `secret`; the secret-derived key is the only one known
    /// until [`Keys::start`] reads the database.
    pub fn new(secret: &[u8]) -> Keys {
        // Derive everything so the raw secret is never used directly for two purposes.
        let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let seed = ring::hmac::sign(&derive, b"quayside registry service key seed v1");
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed.as_ref()[..32])
            .unwrap_or_else(|_| unreachable!("a 32-byte seed is a valid Ed25519 seed"));
        let kid = thumbprint(pair.public_key().as_ref());
        let config_jwk = jwk_of(pair.public_key().as_ref(), &kid);
        let sealing = ring::hmac::sign(&derive, b"quayside service key sealing v1");
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, sealing.as_ref())
            .unwrap_or_else(|_| unreachable!("32-byte key"));
        let config = Arc::new(Signer { kid, pair });
        let mut ring = Ring::default();
        ring.keys.insert(
            config.kid.clone(),
            Verifier {
                public: config.pair.public_key().as_ref().to_vec(),
                expires_ms: None,
                approved: true,
            },
        );
        ring.signers.push((config.clone(), None));
        Keys {
            config,
            config_jwk,
            seal: aead::LessSafeKey::new(unbound),
            ring: RwLock::new(Arc::new(ring)),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The key id of the key derived from the installation secret.
    pub fn config_kid(&self) -> &str {
        &self.config.kid
    }

    /// Registers the secret-derived key (once in the installation's life), retires the
    /// registry's keys this secret cannot sign with (a previous secret's), and reads the key
    /// set.
    pub async fn start(&self, db: &Db, now_ms: i64) -> Result<(), DbError> {
        let jwk = self.config_jwk.to_string();
        let metadata = json!({ "created_by": "Quayside installation secret" }).to_string();
        let mut tx = db.begin().await?;
        let registered = db::operations::service_keys::register_once(
            &mut tx,
            &format!("{REGISTERED_PREFIX}{}", self.config.kid),
            &db::operations::service_keys::NewServiceKey {
                kid: &self.config.kid,
                service: INSTANCE_SERVICE,
                name: "Quayside registry key",
                jwk: &jwk,
                metadata: &metadata,
                created_ms: now_ms,
                expires_ms: None,
                origin: ORIGIN_CONFIG,
                private_sealed: None,
            },
        )
        .await?;
        tx.commit().await?;
        if registered {
            tracing::info!(kid = %self.config.kid, "registered the installation secret's service key");
        }
        for row in db::operations::service_keys::of_service(db.pool(), INSTANCE_SERVICE).await? {
            let ours = match (row.origin.as_str(), &row.private_sealed) {
                (ORIGIN_CONFIG, _) => row.kid == self.config.kid,
                (_, Some(sealed)) => self.open_private(sealed).is_some(),
                (_, None) => true,
            };
            if !ours && row.expires_ms.is_none_or(|e| e > now_ms) {
                // A key of a previous installation secret: its tokens are refused from now on,
                // as they were before keys rotated.
                tracing::warn!(kid = %row.kid, "expiring a registry key the installation secret cannot sign with (the secret changed)");
                db::operations::service_keys::set_expiration(db.pool(), &row.kid, Some(now_ms))
                    .await?;
            }
        }
        self.reload(db, now_ms).await
    }

    /// Forgets the cached key set (after a change of a key on this replica).
    pub fn invalidate(&self) {
        if let Ok(mut ring) = self.ring.write() {
            let mut stale = Ring::clone(&ring);
            stale.loaded_ms = None;
            *ring = Arc::new(stale);
        }
    }

    /// Generates a key pair for service keys; its kid is its RFC 7638 thumbprint.
    pub fn generate(&self) -> Result<GeneratedKey, IssueError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| IssueError::Crypto)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| IssueError::Crypto)?;
        let public = pair.public_key().as_ref();
        let kid = thumbprint(public);
        // SubjectPublicKeyInfo of an Ed25519 key: a fixed prefix, then the key.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(public);
        Ok(GeneratedKey {
            jwk: jwk_of(public, &kid),
            kid,
            private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            public_pem: pem("PUBLIC KEY", &spki),
            private_sealed: self.seal_private(pkcs8.as_ref()),
        })
    }

    fn seal_private(&self, pkcs8: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        if getrandom::getrandom(&mut nonce).is_err() {
            use ring::rand::SecureRandom;
            let _ = ring::rand::SystemRandom::new().fill(&mut nonce);
        }
        let mut data = pkcs8.to_vec();
        if self
            .seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                &mut data,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        B64STD.encode(out)
    }

    fn open_private(&self, sealed: &str) -> Option<Ed25519KeyPair> {
        let raw = B64STD.decode(sealed).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let mut data = rest.to_vec();
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .seal
            .open_in_place(nonce, aead::Aad::empty(), &mut data)
            .ok()?;
        Ed25519KeyPair::from_pkcs8(plain).ok()
    }

    /// Reads the key set of service `quay` from the database.
    async fn reload(&self, db: &Db, now_ms: i64) -> Result<(), DbError> {
        let rows = db::operations::service_keys::of_service(db.pool(), INSTANCE_SERVICE).await?;
        let mut ring = Ring {
            loaded_ms: Some(now_ms),
            last_read_ms: Some(now_ms),
            ..Ring::default()
        };
        let mut signers = Vec::new();
        for row in &rows {
            let Some(public) = public_of_jwk(&row.jwk) else {
                continue;
            };
            let verifier = Verifier {
                public,
                expires_ms: row.expires_ms,
                approved: row.approval_type.is_some(),
            };
            if verifier.usable(now_ms) {
                let signer = if row.origin == ORIGIN_CONFIG && row.kid == self.config.kid {
                    Some(self.config.clone())
                } else {
                    row.private_sealed
                        .as_deref()
                        .and_then(|s| self.open_private(s))
                        .filter(|pair| pair.public_key().as_ref() == verifier.public.as_slice())
                        .map(|pair| {
                            Arc::new(Signer {
                                kid: row.kid.clone(),
                                pair,
                            })
                        })
                };
                if let Some(signer) = signer {
                    signers.push((row.created_ms, row.id, signer, row.expires_ms));
                }
            }
            ring.keys.insert(row.kid.clone(), verifier);
        }
        // Newest first, those that outlive a token before those that do not.
        let outlives = |e: &Option<i64>| e.is_none_or(|e| e > now_ms + TOKEN_LIFETIME_S * 1000);
        signers.sort_by_key(|(created, id, _, exp)| {
            (
                std::cmp::Reverse(outlives(exp)),
                std::cmp::Reverse((*created, *id)),
            )
        });
        ring.signers = signers.into_iter().map(|(_, _, s, exp)| (s, exp)).collect();
        if let Ok(mut current) = self.ring.write() {
            *current = Arc::new(ring);
        }
        Ok(())
    }

    /// The key set, read again when stale (or, with `want`, when it lacks that kid, at most
    /// once per [`RELOAD_MIN_MS`]). A failed read keeps the cached set.
    async fn current(&self, db: &Db, now_ms: i64, want: Option<&str>) -> Arc<Ring> {
        let cached = self.ring.read().map(|r| r.clone()).unwrap_or_default();
        let stale = cached
            .loaded_ms
            .is_none_or(|at| now_ms - at >= RING_TTL_MS || now_ms < at);
        let missing = want.is_some_and(|kid| !cached.keys.contains_key(kid))
            && cached
                .last_read_ms
                .is_none_or(|at| now_ms - at >= RELOAD_MIN_MS || now_ms < at);
        if !stale && !missing {
            return cached;
        }
        match self.reload(db, now_ms).await {
            Ok(()) => self.ring.read().map(|r| r.clone()).unwrap_or(cached),
            Err(e) => {
                tracing::warn!(error = %e, "reading the service keys failed; using the cached ones");
                cached
            }
        }
    }

    /// The key new tokens are signed with.
    async fn signer(&self, db: &Db, now_ms: i64) -> Result<Arc<Signer>, IssueError> {
        let ring = self.current(db, now_ms, None).await;
        ring.signers
            .iter()
            .find(|(_, exp)| exp.is_none_or(|e| e > now_ms))
            .map(|(s, _)| s.clone())
            .ok_or(IssueError::NoSigningKey)
    }

    /// The key id new tokens carry now.
    pub async fn signing_kid(&self, db: &Db, now_ms: i64) -> Result<String, IssueError> {
        Ok(self.signer(db, now_ms).await?.kid.clone())
    }

    /// Signs a token for `subject` granting `access`, for audience `service`.
    pub async fn issue(
        &self,
        db: &Db,
        subject: Subject<'_>,
        access: Vec<Access>,
        service: &str,
        now_s: i64,
    ) -> Result<String, IssueError> {
        let signer = self.signer(db, now_s * 1000).await?;
        Ok(sign(
            &signer,
            &registry_claims(subject, access, service, now_s),
        ))
    }

    /// A short-lived token a robot logs in with in place of its long-lived one (the result of a
    /// federated, keyless token exchange).
    pub async fn issue_robot_login(
        &self,
        db: &Db,
        robot: &RobotRef,
        now_s: i64,
    ) -> Result<String, IssueError> {
        let signer = self.signer(db, now_s * 1000).await?;
        Ok(sign(&signer, &robot_login_claims(robot, now_s)))
    }

    /// Verifies a robot login token: signature, lifetime, purpose and that it is `robot_name`'s.
    pub async fn verify_robot_login(
        &self,
        db: &Db,
        token: &str,
        robot_name: &str,
        now_s: i64,
    ) -> Result<(), JwtError> {
        let ring = self
            .current(db, now_s * 1000, header_kid(token).as_deref())
            .await;
        check_robot_login(self.verify_claims(&ring, token, now_s)?, robot_name)
    }

    /// Verifies signature (with the key the header names), lifetime and audience (`audience`
    /// is this registry's service name, [`Ctx::registry_service`]) and returns the grant. The
    /// grant names its account by id; the caller still checks that the account exists and is
    /// enabled.
    pub async fn verify(
        &self,
        db: &Db,
        token: &str,
        audience: &str,
        now_s: i64,
    ) -> Result<Grant, JwtError> {
        let ring = self
            .current(db, now_s * 1000, header_kid(token).as_deref())
            .await;
        grant_of(self.verify_claims(&ring, token, now_s)?, audience)
    }

    /// [`verify_claims`], remembering tokens whose signature verified (see the module doc).
    fn verify_claims(&self, ring: &Ring, token: &str, now_s: i64) -> Result<Claims, JwtError> {
        let hash: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| JwtError::Malformed)?;
        let hit = self
            .verified
            .lock()
            .ok()
            .and_then(|seen| seen.get(&hash).cloned());
        if let Some((kid, claims)) = hit {
            if !ring.keys.get(&kid).is_some_and(|k| k.usable(now_s * 1000)) {
                return Err(JwtError::UnknownKey);
            }
            check_lifetime(&claims, now_s)?;
            return Ok(claims);
        }
        let (kid, claims) = verify_claims(ring, token, now_s)?;
        if let Ok(mut seen) = self.verified.lock() {
            if seen.len() >= VERIFIED_CAPACITY {
                seen.retain(|_, (_, c)| now_s < c.exp);
                if seen.len() >= VERIFIED_CAPACITY {
                    seen.clear();
                }
            }
            seen.insert(hash, (kid, claims.clone()));
        }
        Ok(claims)
    }
}

fn registry_claims(subject: Subject<'_>, access: Vec<Access>, service: &str, now_s: i64) -> Claims {
    let (kind, uid, name, superuser, owner) = match subject {
        Subject::Anonymous => ("anonymous", None, None, false, None),
        Subject::User(u) => ("user", Some(u.id), Some(u.name.clone()), u.superuser, None),
        Subject::Robot(r) => (
            "robot",
            Some(r.id),
            Some(r.name.clone()),
            false,
            Some(r.owner.clone()),
        ),
    };
    Claims {
        iss: ISSUER.into(),
        sub: name.clone().unwrap_or_default(),
        aud: service.into(),
        exp: now_s + TOKEN_LIFETIME_S,
        nbf: now_s - 5,
        iat: now_s,
        jti: uuid::Uuid::new_v4().to_string(),
        access,
        context: Context {
            kind: kind.into(),
            uid,
            user: name,
            superuser,
            owner,
        },
    }
}

fn robot_login_claims(robot: &RobotRef, now_s: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        sub: robot.name.clone(),
        aud: ROBOT_AUDIENCE.into(),
        exp: now_s + ROBOT_TOKEN_LIFETIME_S,
        nbf: now_s - 5,
        iat: now_s,
        jti: uuid::Uuid::new_v4().to_string(),
        access: Vec::new(),
        context: Context {
            kind: "robot-login".into(),
            uid: Some(robot.id),
            user: Some(robot.name.clone()),
            superuser: false,
            owner: Some(robot.owner.clone()),
        },
    }
}

fn sign(signer: &Signer, claims: &Claims) -> String {
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": signer.kid });
    let header = B64.encode(header.to_string());
    // Serializing plain structs cannot fail.
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let sig = signer.pair.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.as_ref()))
}

fn header_of(token: &str) -> Option<Header> {
    let header = token.split('.').next()?;
    serde_json::from_slice(&B64.decode(header).ok()?).ok()
}

fn header_kid(token: &str) -> Option<String> {
    header_of(token).and_then(|h| h.kid)
}

/// Checks signature, issuer and lifetime; returns the signing kid and the claims.
fn verify_claims(ring: &Ring, token: &str, now_s: i64) -> Result<(String, Claims), JwtError> {
    let (signing_input, sig) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (_, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| JwtError::Malformed)?;
    let header = header_of(token).ok_or(JwtError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(JwtError::Malformed);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let key = ring.keys.get(&kid).ok_or(JwtError::UnknownKey)?;
    if !key.usable(now_s * 1000) {
        return Err(JwtError::UnknownKey);
    }
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.public)
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&B64.decode(payload).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(JwtError::Malformed);
    }
    check_lifetime(&claims, now_s)?;
    Ok((kid, claims))
}

fn check_lifetime(claims: &Claims, now_s: i64) -> Result<(), JwtError> {
    if now_s >= claims.exp || now_s < claims.nbf {
        return Err(JwtError::Expired);
    }
    Ok(())
}

fn check_robot_login(claims: Claims, robot_name: &str) -> Result<(), JwtError> {
    if claims.aud != ROBOT_AUDIENCE
        || claims.context.kind != "robot-login"
        || claims.sub != robot_name
    {
        return Err(JwtError::Malformed);
    }
    Ok(())
}

fn grant_of(claims: Claims, audience: &str) -> Result<Grant, JwtError> {
    if claims.aud != audience {
        return Err(JwtError::WrongAudience);
    }
    let (user, robot) = match (
        claims.context.kind.as_str(),
        claims.context.uid,
        claims.context.user,
    ) {
        ("user", Some(id), Some(name)) => (
            Some(UserRef {
                id,
                name,
                superuser: claims.context.superuser,
            }),
            None,
        ),
        ("robot", Some(id), Some(name)) => (
            None,
            Some(RobotRef {
                id,
                name,
                owner: claims.context.owner.unwrap_or_default(),
            }),
        ),
        ("anonymous", _, _) => (None, None),
        // Robot login tokens are credentials, not registry tokens.
        _ => return Err(JwtError::Malformed),
    };
    Ok(Grant {
        user,
        robot,
        access: claims.access,
        expires_at_s: claims.exp,
    })
}

impl Ctx {
    /// This registry's service name: the only audience its token server issues tokens for and
    /// its `/v2` accepts, and the `service` of its `WWW-Authenticate` challenge.
    /// `SERVER_HOSTNAME`, or the listen address when no hostname is configured (never the
    /// request's `Host`, which the caller chooses).
    pub fn registry_service(&self) -> String {
        self.config
            .server_hostname
            .clone()
            .unwrap_or_else(|| self.config.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserRef {
        UserRef {
            id: 7,
            name: "alice".into(),
            superuser: false,
        }
    }

    /// The key set of a fresh installation: the secret-derived key alone.
    fn ring_of(keys: &Keys) -> Ring {
        Ring::clone(&keys.ring.read().unwrap())
    }

    fn issue(
        keys: &Keys,
        subject: Subject<'_>,
        access: Vec<Access>,
        aud: &str,
        now: i64,
    ) -> String {
        sign(&keys.config, &registry_claims(subject, access, aud, now))
    }

    fn verify(keys: &Keys, token: &str, aud: &str, now: i64) -> Result<Grant, JwtError> {
        grant_of(keys.verify_claims(&ring_of(keys), token, now)?, aud)
    }

    #[test]
    fn round_trip_and_checks() {
        let keys = Keys::new(b"secret");
        let access = vec![Access {
            kind: "repository".into(),
            name: "alice/app".into(),
            actions: vec!["pull".into(), "push".into()],
        }];
        let token = issue(
            &keys,
            Subject::User(&alice()),
            access.clone(),
            "registry",
            1000,
        );
        assert_eq!(header_kid(&token).as_deref(), Some(keys.config_kid()));
        let grant = verify(&keys, &token, "registry", 1001).unwrap();
        assert_eq!(grant.user, Some(alice()));
        assert!(grant.allows("repository", "alice/app", "push"));
        assert!(!grant.allows("repository", "alice/other", "pull"));
        assert!(!grant.allows("repository", "alice/app", "delete"));

        assert_eq!(
            verify(&keys, &token, "registry", 1000 + TOKEN_LIFETIME_S),
            Err(JwtError::Expired)
        );
        // Another secret derives another key: the kid is unknown there.
        assert_eq!(
            verify(&Keys::new(b"other"), &token, "registry", 1001),
            Err(JwtError::UnknownKey)
        );
        let mut tampered = token.clone();
        let at = token.find('.').unwrap() + 3;
        tampered.replace_range(
            at..at + 1,
            if &token[at..at + 1] == "x" { "y" } else { "x" },
        );
        assert!(verify(&keys, &tampered, "registry", 1001).is_err());
        assert_eq!(
            verify(&keys, "abc", "registry", 1001),
            Err(JwtError::Malformed)
        );
        // A token for another service is refused, however well signed.
        let foreign = issue(&keys, Subject::User(&alice()), vec![], "elsewhere", 1000);
        assert_eq!(
            verify(&keys, &foreign, "registry", 1001),
            Err(JwtError::WrongAudience)
        );
    }

    #[test]
    fn the_secret_derived_key_is_stable() {
        assert_eq!(Keys::new(b"s").config_kid(), Keys::new(b"s").config_kid());
        assert_ne!(Keys::new(b"s").config_kid(), Keys::new(b"t").config_kid());
    }

    #[test]
    fn a_signature_of_another_key_under_a_known_kid_fails() {
        let keys = Keys::new(b"k");
        let other = Keys::new(b"other");
        // Signed by `other` but claiming `keys`' kid.
        let forged = sign(
            &Signer {
                kid: keys.config_kid().to_owned(),
                pair: Ed25519KeyPair::from_pkcs8(
                    Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                        .unwrap()
                        .as_ref(),
                )
                .unwrap(),
            },
            &registry_claims(Subject::User(&alice()), vec![], "s", 10),
        );
        assert_eq!(verify(&keys, &forged, "s", 11), Err(JwtError::BadSignature));
        let _ = other;
    }

    #[test]
    fn expired_or_unapproved_keys_do_not_verify() {
        let keys = Keys::new(b"k");
        let token = issue(&keys, Subject::Anonymous, vec![], "s", 10);
        // Verified once with the key usable, so the signature is remembered: the key checks
        // must still apply to the remembered token.
        assert!(keys.verify_claims(&ring_of(&keys), &token, 11).is_ok());
        let mut ring = ring_of(&keys);
        ring.keys.get_mut(keys.config_kid()).unwrap().expires_ms = Some(11_000);
        assert_eq!(
            verify_claims(&ring, &token, 12).map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            keys.verify_claims(&ring, &token, 12).map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        let mut ring = ring_of(&keys);
        ring.keys.get_mut(keys.config_kid()).unwrap().approved = false;
        assert_eq!(
            verify_claims(&ring, &token, 11).map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            keys.verify_claims(&ring, &token, 11).map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        let mut ring = ring_of(&keys);
        ring.keys.remove(keys.config_kid());
        assert_eq!(
            keys.verify_claims(&ring, &token, 11).map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        // And the lifetime: a remembered token expires.
        assert_eq!(
            keys.verify_claims(&ring_of(&keys), &token, 10 + TOKEN_LIFETIME_S)
                .map(|_| ()),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn a_remembered_signature_is_only_the_same_token() {
        let keys = Keys::new(b"k");
        let token = issue(&keys, Subject::Anonymous, vec![], "s", 10);
        assert!(keys.verify_claims(&ring_of(&keys), &token, 11).is_ok());
        // The same signature on other claims: refused although the signature was seen.
        let (signing_input, sig) = token.rsplit_once('.').unwrap();
        let (header, _) = signing_input.split_once('.').unwrap();
        let mut claims = registry_claims(Subject::Anonymous, vec![], "s", 10);
        claims.context.superuser = true;
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{header}.{payload}.{sig}");
        assert_eq!(
            keys.verify_claims(&ring_of(&keys), &forged, 11).map(|_| ()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn generated_keys_seal_and_verify() {
        let keys = Keys::new(b"k");
        let generated = keys.generate().unwrap();
        let pair = keys.open_private(&generated.private_sealed).unwrap();
        assert_eq!(thumbprint(pair.public_key().as_ref()), generated.kid);
        assert_eq!(
            public_of_jwk(&generated.jwk.to_string()).unwrap(),
            pair.public_key().as_ref()
        );
        assert!(
            Keys::new(b"other")
                .open_private(&generated.private_sealed)
                .is_none()
        );
        assert!(
            generated
                .private_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(
            generated
                .public_pem
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
    }

    #[test]
    fn anonymous_token() {
        let keys = Keys::new(b"k");
        let t = issue(&keys, Subject::Anonymous, vec![], "s", 10);
        let g = verify(&keys, &t, "s", 11).unwrap();
        assert!(g.user.is_none());
        assert!(g.access.is_empty());
    }

    #[test]
    fn robot_tokens_and_robot_logins() {
        let keys = Keys::new(b"k");
        let robot = RobotRef {
            id: 3,
            name: "org+ci".into(),
            owner: "org".into(),
        };
        let t = issue(&keys, Subject::Robot(&robot), vec![], "s", 10);
        assert_eq!(
            verify(&keys, &t, "s", 11).unwrap().robot,
            Some(robot.clone())
        );
        let login = sign(&keys.config, &robot_login_claims(&robot, 10));
        let check = |token: &str, name: &str, now: i64| {
            check_robot_login(keys.verify_claims(&ring_of(&keys), token, now)?, name)
        };
        assert!(check(&login, "org+ci", 11).is_ok());
        assert!(check(&login, "org+other", 11).is_err());
        assert_eq!(
            check(&login, "org+ci", 10 + ROBOT_TOKEN_LIFETIME_S),
            Err(JwtError::Expired)
        );
        // A login token is not a registry token, and the other way round.
        assert!(verify(&keys, &login, "s", 11).is_err());
        assert!(check(&t, "org+ci", 11).is_err());
    }
}
