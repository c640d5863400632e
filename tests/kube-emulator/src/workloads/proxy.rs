//! Reaching Services: endpoint selection, per-Service local forwarders, the API server's
//! service proxy and Service address rewriting.
//!
//! Rules:
//! - A Service's endpoints are the Pods in its namespace matching `spec.selector` that are not
//!   being deleted and whose `Ready` condition is `True`; a port's `targetPort` (number, or name
//!   of a container port) is resolved per Pod to the local port published in the Pod's
//!   [`super::PORTS_ANNOTATION`]. The first endpoint (by Pod name) is used.
//! - With the workload runner on, each Service port gets a stable TCP listener on 127.0.0.1
//!   that forwards every connection to an endpoint chosen at connect time (like kube-proxy). Its
//!   address is written to the Service annotations [`super::LOCAL_ADDRESS_ANNOTATION`] (first
//!   port) and `kube-emulator.quayside.dev/local-address-<port>` (every port).
//! - `/api/v1/namespaces/{ns}/services/[{scheme}:]{name}[:{port}]/proxy/{path}` forwards the
//!   HTTP request (method, path, query, headers except `Authorization`, body) to an endpoint over
//!   plain HTTP and streams the answer back; `503` when there is no ready endpoint.
//! - Inside Pods, `{svc}.{ns}.svc.cluster.local:{port}`, `{svc}.{ns}.svc:{port}`,
//!   `{svc}.{ns}:{port}` and (same namespace) `{svc}:{port}` in argv, env values and mounted
//!   ConfigMap/Secret files are replaced by the Service port's local address (no cluster DNS
//!   exists here). Host names without a port are left alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{LOCAL_ADDRESS_ANNOTATION, PORTS_ANNOTATION, Runner, lock, ready_pods};
use crate::api::{Cluster, State, name_of, ns_of, uid_of};
use crate::status::{ApiError, ApiResult};

/// `(namespace, service, port)` → listener.
#[derive(Debug, Default)]
pub struct Forwarders {
    map: Mutex<HashMap<(String, String, i64), Forwarder>>,
}

#[derive(Debug)]
struct Forwarder {
    uid: String,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarders {
    /// The local address of a Service port, if forwarded.
    pub fn address(&self, ns: &str, svc: &str, port: i64) -> Option<SocketAddr> {
        lock(&self.map)
            .get(&(ns.to_owned(), svc.to_owned(), port))
            .map(|f| f.addr)
    }

    /// Stops all listeners.
    pub fn shutdown(&self) {
        for (_, f) in lock(&self.map).drain() {
            f.task.abort();
        }
    }
}

/// The local port of a ready endpoint for a Service port (`port`: a `spec.ports[]` entry).
pub fn endpoint(st: &State, svc: &Value, port: &Value) -> Option<u16> {
    let selector = svc["spec"]["selector"].as_object()?;
    if selector.is_empty() {
        return None;
    }
    let target = port
        .get("targetPort")
        .cloned()
        .unwrap_or_else(|| port["port"].clone());
    let mut pods = ready_pods(st, ns_of(svc), selector);
    pods.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    pods.iter().find_map(|p| pod_port(p, &target))
}

fn pod_port(pod: &Value, target: &Value) -> Option<u16> {
    let number = match target {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .find(|p| p["name"] == s.as_str())?["containerPort"]
                .as_i64()?,
        },
        _ => return None,
    };
    let map: HashMap<String, u16> =
        serde_json::from_str(pod["metadata"]["annotations"][PORTS_ANNOTATION].as_str()?).ok()?;
    map.get(&number.to_string()).copied()
}

/// Keeps one forwarder per Service port and the Services' address annotations current.
pub async fn sync_services(runner: &Arc<Runner>) {
    let services: Vec<Arc<Value>> = {
        let st = runner.cluster.lock();
        let rt = st.rt("", "services");
        st.store.list(&rt.store_key(), None)
    };
    let mut wanted = Vec::new();
    for svc in &services {
        if svc["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(port) = p["port"].as_i64() {
                wanted.push((
                    ns_of(svc).to_owned(),
                    name_of(svc).to_owned(),
                    port,
                    uid_of(svc).to_owned(),
                ));
            }
        }
    }
    // Drop forwarders of deleted or replaced Services.
    lock(&runner.services.map).retain(|(ns, name, port), f| {
        let keep = wanted
            .iter()
            .any(|(n, s, p, u)| n == ns && s == name && p == port && *u == f.uid);
        if !keep {
            f.task.abort();
        }
        keep
    });
    for (ns, name, port, uid) in &wanted {
        let key = (ns.clone(), name.clone(), *port);
        if lock(&runner.services.map).contains_key(&key) {
            continue;
        }
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let cluster = runner.cluster.clone();
        let (ns2, name2, port2) = key.clone();
        let task = tokio::spawn(async move { forward(listener, cluster, ns2, name2, port2).await });
        lock(&runner.services.map).insert(
            key,
            Forwarder {
                uid: uid.clone(),
                addr,
                task,
            },
        );
    }
    // Annotations.
    let mut st = runner.cluster.lock();
    let rt = st.rt("", "services");
    for svc in &services {
        if svc["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let mut new = (**svc).clone();
        let mut changed = false;
        for (i, p) in svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(port) = p["port"].as_i64() else {
                continue;
            };
            let Some(addr) = runner.services.address(ns_of(svc), name_of(svc), port) else {
                continue;
            };
            let addr = json!(addr.to_string());
            let mut set = |k: String| {
                if new["metadata"]["annotations"][&k] != addr {
                    new["metadata"]["annotations"][&k] = addr.clone();
                    changed = true;
                }
            };
            set(format!("{LOCAL_ADDRESS_ANNOTATION}-{port}"));
            if i == 0 {
                set(LOCAL_ADDRESS_ANNOTATION.to_owned());
            }
        }
        if changed {
            let _ = st.controller_update(&rt, new, "kube-emulator");
        }
    }
}

async fn forward(
    listener: tokio::net::TcpListener,
    cluster: Arc<Cluster>,
    ns: String,
    svc: String,
    port: i64,
) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = {
            let st = cluster.lock();
            let rt = st.rt("", "services");
            st.find(&rt, &ns, &svc).and_then(|s| {
                let p = s["spec"]["ports"]
                    .as_array()?
                    .iter()
                    .find(|p| p["port"] == port)?
                    .clone();
                endpoint(&st, &s, &p)
            })
        };
        let Some(local) = target else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", local)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// `(host:port patterns, local address)` for the Services visible from namespace `ns`.
pub fn service_addresses(st: &State, runner: &Runner, ns: &str) -> Vec<(String, String)> {
    let rt = st.rt("", "services");
    let mut out = Vec::new();
    for svc in st.store.list(&rt.store_key(), None) {
        let (sns, name) = (ns_of(&svc), name_of(&svc));
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            let Some(port) = p["port"].as_i64() else {
                continue;
            };
            let Some(addr) = runner.services.address(sns, name, port) else {
                continue;
            };
            let addr = addr.to_string();
            for host in [
                format!("{name}.{sns}.svc.cluster.local"),
                format!("{name}.{sns}.svc"),
                format!("{name}.{sns}"),
            ] {
                out.push((format!("{host}:{port}"), addr.clone()));
            }
            if sns == ns {
                out.push((format!("{name}:{port}"), addr.clone()));
            }
        }
    }
    out.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    out
}

/// Replaces Service addresses in `s` (patterns from [`service_addresses`], longest first).
pub fn rewrite_service_addresses(s: &str, patterns: &[(String, String)]) -> String {
    if patterns.is_empty() {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'outer: while i < s.len() {
        let before_ok = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || matches!(bytes[i - 1], b'-' | b'.' | b'_'));
        if before_ok {
            for (pat, repl) in patterns {
                if s[i..].starts_with(pat.as_str()) {
                    let end = i + pat.len();
                    if end == s.len() || !bytes[end].is_ascii_digit() {
                        out.push_str(repl);
                        i = end;
                        continue 'outer;
                    }
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `<SVC>_SERVICE_HOST` / `<SVC>_SERVICE_PORT` variables for the namespace's Services.
pub fn service_env(
    st: &State,
    runner: &Runner,
    ns: &str,
) -> Vec<((String, String), (String, String))> {
    let rt = st.rt("", "services");
    let mut out = Vec::new();
    for svc in st.store.list(&rt.store_key(), Some(ns)) {
        let name = name_of(&svc);
        let Some(port) = svc["spec"]["ports"][0]["port"].as_i64() else {
            continue;
        };
        let Some(addr) = runner.services.address(ns, name, port) else {
            continue;
        };
        let var = name.to_uppercase().replace('-', "_");
        out.push((
            (format!("{var}_SERVICE_HOST"), addr.ip().to_string()),
            (format!("{var}_SERVICE_PORT"), addr.port().to_string()),
        ));
    }
    out
}

/// Sends `GET path` to `127.0.0.1:port`; returns the status code.
pub async fn http_get_status(port: u16, path: &str, headers: &[(String, String)]) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    get_status(stream, port, path, headers).await
}

/// Sends `GET path` over TLS to `127.0.0.1:port` without verifying the certificate (what the
/// kubelet does for `scheme: HTTPS` probes); returns the status code.
pub async fn https_get_status(port: u16, path: &str, headers: &[(String, String)]) -> Option<u16> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .ok()?;
    get_status(tls, port, path, headers).await
}

async fn get_status<S>(
    stream: S,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut req = http::Request::get(path).header(http::header::HOST, format!("127.0.0.1:{port}"));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(req.body(Empty::<bytes::Bytes>::new()).ok()?)
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// Accepts any server certificate (probes do not verify, like the kubelet's); signatures are
/// still checked with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Handles `services/{name}/proxy/{rest}`.
pub async fn proxy_request(
    cluster: &Arc<Cluster>,
    ns: &str,
    name_spec: &str,
    rest: &str,
    parts: Parts,
    body: Body,
) -> ApiResult<Response> {
    // [scheme:]name[:port]
    let pieces: Vec<&str> = name_spec.split(':').collect();
    let (name, port_ref) = match pieces.as_slice() {
        [n] => (*n, None),
        [s, n] if matches!(*s, "http" | "https") => (*n, None),
        [n, p] => (*n, Some(*p)),
        [_, n, p] => (*n, Some(*p)),
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid service proxy name {name_spec:?}"
            )));
        }
    };
    let local = {
        let st = cluster.lock();
        let rt = st.rt("", "services");
        let svc = st
            .find(&rt, ns, name)
            .ok_or_else(|| ApiError::not_found("", "services", name))?;
        let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let port = match port_ref.filter(|p| !p.is_empty()) {
            None => ports.first().cloned(),
            Some(p) => ports
                .iter()
                .find(|x| {
                    x["name"] == p
                        || x["port"].as_i64().map(|n| n.to_string()).as_deref() == Some(p)
                })
                .cloned(),
        }
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "no service port {port_ref:?} found for service \"{name}\""
            ))
        })?;
        endpoint(&st, &svc, &port).ok_or_else(|| {
            ApiError::unavailable(format!("no endpoints available for service \"{name}\""))
        })?
    };
    let mut path = format!("/{rest}");
    if let Some(q) = parts.uri.query() {
        path.push('?');
        path.push_str(q);
    }
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", local))
        .await
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))?;
    tokio::spawn(conn);
    let mut req = http::Request::builder().method(parts.method).uri(&path);
    for (k, v) in &parts.headers {
        if k == http::header::AUTHORIZATION || k == http::header::HOST {
            continue;
        }
        req = req.header(k, v);
    }
    req = req.header(http::header::HOST, format!("127.0.0.1:{local}"));
    let req = req
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("error trying to reach service: {e}")))?;
    let (rparts, rbody) = resp.into_parts();
    let body = Body::new(rbody.map_err(axum::Error::new));
    Ok(Response::from_parts(rparts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_probes_reach_a_tls_server_without_verifying_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cert = crate::tls::ServerCert::generate().unwrap();
        let router = axum::Router::new().route(
            "/health",
            axum::routing::get(|| async { (http::StatusCode::ACCEPTED, "ok") }),
        );
        let server = tokio::spawn(crate::tls::serve(listener, cert, router));
        assert_eq!(https_get_status(port, "/health", &[]).await, Some(202));
        // Plain HTTP to a TLS port gets no status.
        assert_eq!(http_get_status(port, "/health", &[]).await, None);
        server.abort();
    }

    #[test]
    fn service_addresses_are_rewritten_with_boundaries() {
        let pats = vec![
            (
                "db.ns.svc.cluster.local:5432".to_owned(),
                "127.0.0.1:4000".to_owned(),
            ),
            ("db.ns.svc:5432".to_owned(), "127.0.0.1:4000".to_owned()),
            ("db:5432".to_owned(), "127.0.0.1:4000".to_owned()),
        ];
        assert_eq!(
            rewrite_service_addresses("postgresql://u:p@db:5432/quay", &pats),
            "postgresql://u:p@127.0.0.1:4000/quay"
        );
        assert_eq!(
            rewrite_service_addresses("host=db.ns.svc.cluster.local:5432", &pats),
            "host=127.0.0.1:4000"
        );
        assert_eq!(
            rewrite_service_addresses("mydb:5432 db:54321", &pats),
            "mydb:5432 db:54321"
        );
    }
}
