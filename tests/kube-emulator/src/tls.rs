//! HTTPS serving with a throw-away self-signed certificate.
//!
//! client-go (kubectl, Helm) only sends credentials — bearer tokens and impersonation headers —
//! over TLS, so the emulator serves HTTPS by default. Each emulator generates an ECDSA P-256
//! certificate for `127.0.0.1`, `::1` and `localhost` at start; the kubeconfig carries it as
//! `certificate-authority-data` and [`crate::Emulator::client`] trusts it, so no client needs
//! to skip verification. Only HTTP/1.1 is offered (ALPN), which every client supports.

use std::sync::Arc;

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A serving certificate and the acceptor using it.
#[derive(Clone)]
pub struct ServerCert {
    /// PEM of the (self-signed) certificate: the CA clients must trust.
    pub cert_pem: String,
    /// DER of the same certificate.
    pub cert_der: Vec<u8>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").finish_non_exhaustive()
    }
}

impl ServerCert {
    /// Generates a certificate for the loopback names.
    pub fn generate() -> anyhow::Result<Self> {
        let names = vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ];
        let key = rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
        let cert_der = key.cert.der().to_vec();
        let key_der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(cert_der.clone())],
                key_der.into(),
            )?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert_pem: key.cert.pem(),
            cert_der,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Serves `router` over TLS until the task is aborted.
pub async fn serve(listener: TcpListener, cert: ServerCert, router: axum::Router) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = cert.acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
