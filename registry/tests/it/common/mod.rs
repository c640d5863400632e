//! Test harness: starts the real server in-process on a random loopback port, against SQLite in
//! a temporary directory or a fresh PostgreSQL database, and offers small helpers to talk to it.

#![allow(dead_code)]

pub mod distribution;
pub mod oci;
pub mod oidc;
pub mod quay;
pub mod sink;
pub mod smtp;
pub mod tags;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use quayside::config::{Config, Overrides};
use quayside::server::{Running, StartOptions};
use quayside::service::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests calling `name(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Postgres).await }
            )*
        }
    };
}

/// A PostgreSQL database created for one test and dropped afterwards.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

fn postgres_admin_url() -> String {
    std::env::var("QUAYSIDE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        use sqlx::ConnectOptions;
        let admin_url = postgres_admin_url();
        let name = format!("quayside_test_{}", uuid::Uuid::new_v4().simple());
        let options: sqlx::postgres::PgConnectOptions =
            admin_url.parse().expect("QUAYSIDE_TEST_POSTGRES_URL");
        let mut conn = options.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin_url} ({e}). The suite runs every integration \
                 test on PostgreSQL too: start one (`.ci/run` does) or point \
                 QUAYSIDE_TEST_POSTGRES_URL at one."
            )
        });
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping needs async I/O; do it on a private runtime so it works from any context.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                use sqlx::ConnectOptions;
                let Ok(options) = url.parse::<sqlx::postgres::PgConnectOptions>() else {
                    return;
                };
                if let Ok(mut conn) = options.connect().await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::Executor::execute(&mut conn, sql.as_str()).await;
                }
            });
        })
        .join();
    }
}

/// A running server plus what it needs to live.
pub struct TestServer {
    pub running: Option<Running>,
    pub url: String,
    pub host: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    config_yaml: String,
    // Dropped last: the server must stop before its files and database go.
    pub pg: Option<PgDatabase>,
    pub dir: tempfile::TempDir,
}

#[derive(Default)]
pub struct Options {
    /// Extra config.yaml lines.
    pub yaml: String,
    pub workers: bool,
    /// Write these files next to config.yaml (e.g. ssl.cert / ssl.key).
    pub files: Vec<(String, String)>,
    /// Leave out the suite's defaults (`FEATURE_USER_INITIALIZE: true`): the config is `yaml`.
    pub no_suite_defaults: bool,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> TestServer {
        // Server logs land in the test's captured output (shown when it fails).
        quayside::telemetry::init_tracing(quayside::telemetry::LogFormat::Text);
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        // A configuration turns first-user initialization off unless it says otherwise (as
        // Quay); the suite creates its first user that way.
        let mut yaml =
            if options.no_suite_defaults || options.yaml.contains("FEATURE_USER_INITIALIZE") {
                options.yaml.clone()
            } else {
                format!("FEATURE_USER_INITIALIZE: true\n{}", options.yaml)
            };
        if let Some(pg) = &pg {
            yaml.push_str(&format!("\nDB_URI: {}\n", pg.url));
        }
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).expect("conf dir");
        for (name, content) in &options.files {
            std::fs::write(conf.join(name), content).expect("write file");
        }
        let mut server = TestServer {
            running: None,
            url: String::new(),
            host: String::new(),
            client: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .expect("client"),
            clock: Arc::new(ManualClock::new()),
            backend,
            config_yaml: yaml,
            pg,
            dir,
        };
        server.boot(options.workers).await;
        server
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("conf").join("config.yaml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The configuration the server runs with (also written to `config_path()`).
    pub fn config(&self, listen: &str) -> Config {
        let path = self.config_path();
        std::fs::write(&path, &self.config_yaml).expect("write config");
        let overrides = Overrides {
            listen: Some(listen.parse().expect("listen")),
            data_dir: Some(self.data_dir()),
        };
        Config::load(Some(&path), &overrides).expect("valid test config")
    }

    async fn boot(&mut self, workers: bool) {
        let listen = if self.host.is_empty() {
            "127.0.0.1:0".to_owned()
        } else {
            self.host.clone()
        };
        let config = self.config(&listen);
        let options = StartOptions {
            clock: self.clock.clone(),
            workers,
        };
        let running = quayside::server::start(config, options)
            .await
            .expect("server starts");
        self.host = running.addr.to_string();
        self.url = running.url();
        self.running = Some(running);
    }

    /// Appends lines to the configuration (takes effect at the next [`TestServer::restart`]).
    pub fn config_yaml_push(&mut self, extra: &str) {
        self.config_yaml.push_str(extra);
    }

    /// Stops the server and starts it again on the same address with the same data.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.boot(false).await;
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn ctx(&self) -> &quayside::service::Ctx {
        &self.running.as_ref().expect("running").ctx
    }

    /// Creates the first user through `/api/v1/user/initialize` and returns its access token.
    pub async fn init_admin(&self) -> String {
        let body = serde_json::json!({
            "username": ADMIN, "password": ADMIN_PASSWORD,
            "email": "admin@example.com", "access_token": true,
        });
        let r = self
            .client
            .post(format!("{}/api/v1/user/initialize", self.url))
            .json(&body)
            .send()
            .await
            .expect("initialize");
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.expect("json");
        v["access_token"].as_str().expect("token").to_owned()
    }

    /// Creates a (non-super) user directly through the service layer.
    pub async fn user(&self, name: &str) -> (String, String) {
        let password = format!("{name}-password1");
        let email = format!("{name}@example.com");
        quayside::service::tenancy::accounts::create_user(
            self.ctx(),
            name,
            &password,
            Some(&email),
            false,
        )
        .await
        .expect("create user");
        (name.to_owned(), password)
    }

    /// The typed API client, authenticated with `token`.
    pub fn api(&self, token: &str) -> quayside_client::Client {
        quayside_client::Client::new(self.url.clone()).with_token(token)
    }

    /// Sends a JSON request to `/api/v1{path}` with a bearer token (or none) and returns the
    /// status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("api request");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates organization `name`, owned by the token's user.
    pub async fn create_org(&self, token: &str, name: &str) {
        let (status, body) = self
            .call(
                Some(token),
                Method::POST,
                "/organization/",
                Some(json!({ "name": name, "email": format!("{name}@example.com") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// A user and an access token with every scope for them.
    pub async fn user_with_token(&self, name: &str) -> (String, String, String) {
        let (name, password) = self.user(name).await;
        let user = quayside::service::UserRef {
            id: quayside::db::tenancy::namespaces::by_name(self.ctx().db.pool(), &name)
                .await
                .unwrap()
                .unwrap()
                .id,
            name: name.clone(),
            superuser: false,
        };
        let token = quayside::service::tenancy::accounts::create_access_token(
            self.ctx(),
            &user,
            quayside::service::tenancy::accounts::ALL_SCOPES,
        )
        .await
        .expect("token");
        (name, password, token)
    }

    /// Waits until queued audit records are written.
    pub async fn flush_audit(&self) {
        self.ctx().audit.flush().await;
    }

    /// Audit entries of a namespace, newest first.
    pub async fn audit(&self, namespace: &str) -> Vec<quayside::db::operations::audit::EntryRow> {
        self.flush_audit().await;
        quayside::db::operations::audit::of_namespace(self.ctx().db.pool(), namespace, 1000)
            .await
            .expect("audit entries")
    }

    /// A registry bearer token for `scopes`, obtained the way clients do.
    pub async fn token(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let mut req = self
            .client
            .get(format!("{}/v2/auth", self.url))
            .query(&[("service", self.host.as_str())]);
        for s in scopes {
            req = req.query(&[("scope", s)]);
        }
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().await.expect("token request");
        assert_eq!(r.status(), StatusCode::OK, "token request failed");
        let v: Value = r.json().await.expect("json");
        v["token"].as_str().expect("token").to_owned()
    }

    pub fn as_basic(&self, user: &str, password: &str) -> Api<'_> {
        Api {
            server: self,
            auth: Auth::Basic(user.to_owned(), password.to_owned()),
        }
    }

    pub fn as_admin(&self) -> Api<'_> {
        self.as_basic(ADMIN, ADMIN_PASSWORD)
    }

    pub fn as_bearer(&self, token: &str) -> Api<'_> {
        Api {
            server: self,
            auth: Auth::Bearer(token.to_owned()),
        }
    }

    pub fn anonymous(&self) -> Api<'_> {
        Api {
            server: self,
            auth: Auth::None,
        }
    }

    /// Path of a blob's bytes in the filesystem store.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').expect("digest");
        self.data_dir()
            .join("blobs")
            .join("blobs")
            .join(algo)
            .join(&hex[..2])
            .join(hex)
    }
}

#[derive(Clone)]
pub enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

/// Requests as one identity.
pub struct Api<'a> {
    pub server: &'a TestServer,
    pub auth: Auth,
}

impl Api<'_> {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.server.url)
        };
        let req = self.server.client.request(method, url);
        match &self.auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
        }
    }

    pub async fn send(&self, method: Method, path: &str) -> reqwest::Response {
        self.request(method, path).send().await.expect("request")
    }

    /// Uploads a blob monolithically; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = oci::sha256(data);
        let r = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .expect("upload");
        let status = r.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "blob upload: {}",
            r.text().await.unwrap_or_default()
        );
        digest
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest")
    }

    /// Pushes a small random image (config and two layers) under `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str) -> oci::Image {
        let image = oci::Image::random(2);
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        let r = self
            .put_manifest(repo, tag, oci::OCI_MANIFEST, &image.manifest)
            .await;
        let status = r.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "manifest push: {}",
            r.text().await.unwrap_or_default()
        );
        image
    }
}

/// The code of an OCI error envelope.
#[track_caller]
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no OCI error envelope in {body}"))
        .to_owned()
}

/// Asserts status and OCI error code; returns the body.
pub async fn expect_error(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    let got = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status (body {body})");
    assert_eq!(error_code(&body), code, "code in {body}");
    body
}
