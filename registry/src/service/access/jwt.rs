//! Registry bearer tokens (Docker token authentication): compact JWTs signed with HS256.
//!
//! The token server (`/v2/auth`) decides what a principal may do when it issues a token and
//! writes it into the `access` claim; `/v2` requests then authorize from the claim, after one
//! indexed lookup that the token's account still exists and is enabled.
//! A token is for one audience, this registry's service name ([`Ctx::registry_service`]), and
//! names its account by id: verification refuses any other audience, and the caller
//! ([`super::auth`]) refuses a token whose account is gone or disabled.
//! The signing key is shared by every replica (derived from `SECRET_KEY`, or generated once and
//! kept in the database), so any replica verifies any replica's tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::service::{Access, Ctx, Grant, RobotRef, UserRef};

/// How long an issued registry token is valid.
pub const TOKEN_LIFETIME_S: i64 = 3600;
const ISSUER: &str = "quayside";
/// Audience of the short-lived robot tokens handed out for federated (keyless) robot logins.
const ROBOT_AUDIENCE: &str = "quayside-robot-federation";
/// How long a federated robot token is valid.
pub const ROBOT_TOKEN_LIFETIME_S: i64 = 3600;

#[derive(Serialize, Deserialize)]
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

#[derive(Serialize, Deserialize)]
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
    #[error("token has expired")]
    Expired,
    /// The token was issued for another service (its `aud` is not this registry's).
    #[error("token is not for this registry")]
    WrongAudience,
}

pub struct Keys {
    key: ring::hmac::Key,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        // Derive the signing key so the raw secret is never used directly for two purposes.
        let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&derive, b"quayside registry token signing key v1");
        Keys {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// Signs a token for `subject` granting `access`, for audience `service`.
    pub fn issue(
        &self,
        subject: Subject<'_>,
        access: Vec<Access>,
        service: &str,
        now_s: i64,
    ) -> String {
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
        let claims = Claims {
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
        };
        self.sign(&claims)
    }

    /// A short-lived token a robot logs in with in place of its long-lived one (the result of a
    /// federated, keyless token exchange).
    pub fn issue_robot_login(&self, robot: &RobotRef, now_s: i64) -> String {
        let claims = Claims {
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
        };
        self.sign(&claims)
    }

    /// Verifies a robot login token: signature, lifetime, purpose and that it is `robot_name`'s.
    pub fn verify_robot_login(
        &self,
        token: &str,
        robot_name: &str,
        now_s: i64,
    ) -> Result<(), JwtError> {
        let claims = self.verify_claims(token, now_s)?;
        if claims.aud != ROBOT_AUDIENCE
            || claims.context.kind != "robot-login"
            || claims.sub != robot_name
        {
            return Err(JwtError::Malformed);
        }
        Ok(())
    }

    fn sign(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Serializing plain structs cannot fail.
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let sig = ring::hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig.as_ref()))
    }

    /// Verifies signature, lifetime and audience (`audience` is this registry's service name,
    /// [`Ctx::registry_service`]) and returns the grant. The grant names its account by id; the
    /// caller still checks that the account exists and is enabled.
    pub fn verify(&self, token: &str, audience: &str, now_s: i64) -> Result<Grant, JwtError> {
        let claims = self.verify_claims(token, now_s)?;
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

    fn verify_claims(&self, token: &str, now_s: i64) -> Result<Claims, JwtError> {
        let (signing_input, sig) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| JwtError::Malformed)?;
        ring::hmac::verify(&self.key, signing_input.as_bytes(), &sig)
            .map_err(|_| JwtError::BadSignature)?;
        let header = B64.decode(header).map_err(|_| JwtError::Malformed)?;
        if !header.windows(7).any(|w| w == b"\"HS256\"") {
            return Err(JwtError::Malformed);
        }
        let claims: Claims =
            serde_json::from_slice(&B64.decode(payload).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(JwtError::Malformed);
        }
        if now_s >= claims.exp || now_s < claims.nbf {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
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

    #[test]
    fn round_trip_and_checks() {
        let keys = Keys::new(b"secret");
        let access = vec![Access {
            kind: "repository".into(),
            name: "alice/app".into(),
            actions: vec!["pull".into(), "push".into()],
        }];
        let token = keys.issue(Subject::User(&alice()), access.clone(), "registry", 1000);
        let grant = keys.verify(&token, "registry", 1001).unwrap();
        assert_eq!(grant.user, Some(alice()));
        assert!(grant.allows("repository", "alice/app", "push"));
        assert!(!grant.allows("repository", "alice/other", "pull"));
        assert!(!grant.allows("repository", "alice/app", "delete"));

        assert_eq!(
            keys.verify(&token, "registry", 1000 + TOKEN_LIFETIME_S),
            Err(JwtError::Expired)
        );
        assert_eq!(
            Keys::new(b"other").verify(&token, "registry", 1001),
            Err(JwtError::BadSignature)
        );
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 3, 'x');
        assert!(keys.verify(&tampered, "registry", 1001).is_err());
        assert_eq!(
            keys.verify("abc", "registry", 1001),
            Err(JwtError::Malformed)
        );
        // A token for another service is refused, however well signed.
        let foreign = keys.issue(Subject::User(&alice()), vec![], "elsewhere", 1000);
        assert_eq!(
            keys.verify(&foreign, "registry", 1001),
            Err(JwtError::WrongAudience)
        );
    }

    #[test]
    fn anonymous_token() {
        let keys = Keys::new(b"k");
        let t = keys.issue(Subject::Anonymous, vec![], "s", 10);
        let g = keys.verify(&t, "s", 11).unwrap();
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
        let t = keys.issue(Subject::Robot(&robot), vec![], "s", 10);
        assert_eq!(keys.verify(&t, "s", 11).unwrap().robot, Some(robot.clone()));
        let login = keys.issue_robot_login(&robot, 10);
        assert!(keys.verify_robot_login(&login, "org+ci", 11).is_ok());
        assert!(keys.verify_robot_login(&login, "org+other", 11).is_err());
        assert_eq!(
            keys.verify_robot_login(&login, "org+ci", 10 + ROBOT_TOKEN_LIFETIME_S),
            Err(JwtError::Expired)
        );
        // A login token is not a registry token, and the other way round.
        assert!(keys.verify(&login, "s", 11).is_err());
        assert!(keys.verify_robot_login(&t, "org+ci", 11).is_err());
    }
}
