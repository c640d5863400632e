//! The fuller sample: unmanaged S3 storage (moto), unmanaged TLS from a `kubernetes.io/tls`
//! Secret (as cert-manager keeps one), overrides on managed components.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::harness::*;

const NS: &str = "registry-full";
const HOST: &str = "registry.example.com";
const QUAY_PODS: &str = "quayside.dev/quayregistry=registry,quayside.dev/component=quay-app";

/// moto's S3 server on a loopback port; killed on drop.
struct S3 {
    child: Child,
    port: u16,
}

impl S3 {
    async fn start() -> S3 {
        require(
            "python3",
            &["-c", "import moto.server"],
            "pip install 'moto[server]'",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let s3 = S3 { child, port };
        let http = reqwest::Client::new();
        let root = s3.url("");
        wait_for(Duration::from_secs(60), "moto to answer", || {
            let (http, root) = (http.clone(), root.clone());
            async move { http.get(root).send().await.ok().map(|_| ()) }
        })
        .await;
        let r = http
            .put(s3.url("/quayside"))
            .send()
            .await
            .expect("create bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        s3
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a serving certificate for [`HOST`] it signed: `(ca_pem, cert_pem, key_pem)`.
fn certificate(ca_name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("test certificate");
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("test certificate");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("test certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("test certificate");
    let cert = rcgen::CertificateParams::new(vec![HOST.to_owned()])
        .expect("test certificate")
        .signed_by(&key, &issuer)
        .expect("test certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

async fn put_tls_secret(client: &Client, cert: &str, key: &str, ca: &str) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "registry-tls", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": ByteString(cert.as_bytes().to_vec()),
            "tls.key": ByteString(key.as_bytes().to_vec()),
            // As cert-manager writes it; the operator trusts it to reach the registry.
            "ca.crt": ByteString(ca.as_bytes().to_vec()),
        },
    });
    api.patch(
        "registry-tls",
        &PatchParams::apply("cert-manager").force(),
        &Patch::Apply(&secret),
    )
    .await
    .expect("TLS Secret");
}

fn client_trusting(ca: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA PEM"))
        .tls_built_in_root_certs(false)
        .resolve(HOST, addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_sample_uses_s3_the_users_certificate_and_the_overrides() {
    let s3 = S3::start().await;
    let (emu, _scripts) = emulator(false).await;
    let _dump = DumpOnPanic(&emu);
    let client = emu.client();
    install_crds(&emu).await;
    create_namespace(&client, NS).await;
    let operator = Operator::start(&emu, settings()).await;

    // The bundle: the sample's, pointed at moto.
    let mut bundle: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("config/samples/config-bundle-s3.yaml")).unwrap(),
    )
    .unwrap();
    let params = &mut bundle["DISTRIBUTED_STORAGE_CONFIG"]["s3"][1];
    params["host"] = "127.0.0.1".into();
    params["port"] = s3.port.into();
    params["is_secure"] = false.into();
    params["s3_access_key"] = "testing".into();
    params["s3_secret_key"] = "testing".into();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let mut b = Secret::default();
    b.metadata.name = Some("registry-config-bundle".into());
    b.string_data = Some(
        [(
            "config.yaml".to_owned(),
            serde_yaml::to_string(&bundle).unwrap(),
        )]
        .into(),
    );
    secrets
        .create(&PostParams::default(), &b)
        .await
        .expect("bundle");
    let (ca1, cert1, key1) = certificate("first CA");
    put_tls_secret(&client, &cert1, &key1, &ca1).await;

    let sample = repo().join("config/samples/quayregistry-full.yaml");
    apply_server_side(emu.kubeconfig_path(), NS, &sample);
    wait_condition(
        &client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(120),
    )
    .await;
    let r = wait_condition(
        &client,
        NS,
        "registry",
        "Available",
        "True",
        Duration::from_secs(30),
    )
    .await;
    let status = r.status.clone().unwrap_or_default();
    assert_eq!(
        status.registry_endpoint.as_deref(),
        Some("https://registry.example.com")
    );
    let tls = r.condition("ComponentTLSReady").unwrap();
    assert_eq!(
        (tls.reason.as_str(), tls.message.as_str()),
        (
            "ComponentNotManaged",
            "the certificate comes from Secret registry-tls"
        )
    );
    assert_eq!(
        r.condition("ComponentObjectStorageReady").unwrap().reason,
        "ComponentNotManaged"
    );

    // Overrides: two registry pods with the extra label and env, one mirror worker.
    let pods = pod_names(&client, NS, &format!("{QUAY_PODS},team=platform")).await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let quay = deployments.get("registry-quay-app").await.unwrap();
    let container = &quay.spec.template.spec.as_ref().unwrap().containers[0];
    assert!(
        container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "QUAYSIDE_LOG")
    );
    assert_eq!(
        deployments
            .get("registry-quay-mirror")
            .await
            .unwrap()
            .spec
            .replicas,
        Some(1)
    );
    let ingress = Api::<Ingress>::namespaced(client.clone(), NS)
        .get("registry-quay")
        .await
        .unwrap();
    let spec = ingress.spec.unwrap();
    assert_eq!(spec.rules.unwrap()[0].host.as_deref(), Some(HOST));
    assert_eq!(
        spec.tls.unwrap()[0].secret_name.as_deref(),
        Some("registry-tls")
    );

    // The registry serves the user's certificate (verified against the user's CA for HOST).
    let addr = emu
        .wait_for_service(NS, "registry-quay-app", Some(443), Duration::from_secs(30))
        .await
        .unwrap();
    let http = client_trusting(&ca1, addr);
    let base = format!("https://{HOST}:{}", addr.port());
    assert_eq!(
        http.get(format!("{base}/health/instance"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Blobs go to the bundle's S3 bucket.
    let (admin, password) = operator_admin(&client, NS, "registry").await;
    let blob = b"a blob that lands in S3".to_vec();
    let digest = format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, &blob).as_ref())
    );
    let put = http
        .post(format!(
            "{base}/v2/{admin}/s3test/blobs/uploads/?digest={digest}"
        ))
        .basic_auth(&admin, Some(&password))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    let listing = reqwest::get(s3.url("/quayside?list-type=2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains("<Key>"),
        "the bucket holds no object: {listing}"
    );

    // A new certificate in the Secret (cert-manager renewing it) rolls the pods; the new one
    // is served.
    let (ca2, cert2, key2) = certificate("second CA");
    put_tls_secret(&client, &cert2, &key2, &ca2).await;
    wait_for(
        Duration::from_secs(90),
        "the pods to roll to the new certificate",
        || async {
            let now = pod_names(&client, NS, QUAY_PODS).await;
            (now.len() == 2 && now.iter().all(|p| !pods.contains(p))).then_some(())
        },
    )
    .await;
    wait_condition(
        &client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(60),
    )
    .await;
    let http2 = client_trusting(&ca2, addr);
    assert_eq!(
        http2
            .get(format!("{base}/health/instance"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        client_trusting(&ca1, addr)
            .get(format!("{base}/health/instance"))
            .send()
            .await
            .is_err(),
        "the old certificate is still served"
    );

    // The bundle's S3 endpoint goes away, and a bundle change makes new pods start: they
    // cannot reach the storage, and the QuayRegistry says so in the storage condition, with the
    // registry's own words, although the bundle (not the operator) configures the storage.
    drop(s3);
    bundle["STORAGE_START_WAIT_SECONDS"] = 2.into();
    b.string_data = Some(
        [(
            "config.yaml".to_owned(),
            serde_yaml::to_string(&bundle).unwrap(),
        )]
        .into(),
    );
    secrets
        .replace("registry-config-bundle", &PostParams::default(), &b)
        .await
        .expect("bundle");
    let r = wait_condition(
        &client,
        NS,
        "registry",
        "ComponentObjectStorageReady",
        "False",
        Duration::from_secs(120),
    )
    .await;
    let storage = r.condition("ComponentObjectStorageReady").unwrap();
    assert_eq!(storage.reason, "StorageUnreachable", "{}", storage.message);
    assert!(
        storage
            .message
            .contains("cannot reach blob storage (S3 bucket quayside at http://127.0.0.1:"),
        "{}",
        storage.message
    );
    assert_eq!(
        r.condition("ComponentPostgresReady").unwrap().status,
        "True"
    );
    operator.stop().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
