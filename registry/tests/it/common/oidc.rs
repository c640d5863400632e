//! An OIDC issuer on loopback for the federated-robot tests: discovery document, JWKS with one
//! ES256 key (generated) and one RS256 key (a fixed test key), and ID tokens signed with either.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

pub struct Issuer {
    pub url: String,
    ec: EcdsaKeyPair,
    rsa: RsaKeyPair,
    /// How many times the JWKS was fetched.
    pub jwks_fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let der = STANDARD
            .decode(include_str!("../fixtures/oidc-rsa-2048.der.b64").trim())
            .unwrap();
        let rsa = RsaKeyPair::from_der(&der).unwrap();
        let point = ec.public_key().as_ref().to_vec();
        let components: signature::RsaPublicKeyComponents<Vec<u8>> = rsa.public().into();
        let jwks = json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]) },
            { "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": B64.encode(&components.n), "e": B64.encode(&components.e) },
        ]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks"), "id_token_signing_alg_values_supported": ["ES256", "RS256"] });
        let counter = fetches.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let d = discovery.clone();
                    async move { axum::Json(d) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let j = jwks.clone();
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { axum::Json(j) }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            url,
            ec,
            rsa,
            jwks_fetches: fetches,
            task,
        }
    }

    /// An ID token with these claims (the issuer is this one unless `claims` says otherwise).
    pub fn token(&self, alg: Alg, claims: Value) -> String {
        let (header, kid) = match alg {
            Alg::Es256 => ("ES256", "ec-1"),
            Alg::Rs256 => ("RS256", "rsa-1"),
        };
        let mut claims = claims;
        if claims.get("iss").is_none() {
            claims["iss"] = json!(self.url);
        }
        let input = format!(
            "{}.{}",
            B64.encode(json!({ "alg": header, "kid": kid, "typ": "JWT" }).to_string()),
            B64.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let sig = match alg {
            Alg::Es256 => self
                .ec
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Alg::Rs256 => {
                let mut sig = vec![0u8; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &rng,
                        input.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", B64.encode(sig))
    }

    /// A token for `subject` valid for an hour from `now_s`.
    pub fn id_token(&self, alg: Alg, subject: &str, now_s: i64) -> String {
        self.token(
            alg,
            json!({ "sub": subject, "aud": "quay", "iat": now_s, "exp": now_s + 3600 }),
        )
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
