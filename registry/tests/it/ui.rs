//! The web UI. Security checks over plain HTTP on both backends (CSRF, inert `<script>`, the
//! same refusals as the API, no other namespace's names), and one end-to-end flow in headless
//! Chromium driven over WebDriver (chromedriver, spoken to with a small JSON client below):
//! first user, sign out and in, organization, team, robot, repository, a skopeo push, tags,
//! a time-machine restore, an expiration, a label, the usage log, sign out. Each browser step
//! saves a screenshot under `target/ui-screenshots/` and checks the browser console has no
//! errors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    forms_without_the_csrf_token_are_refused,
    script_in_description_and_label_is_inert,
    private_pages_are_refused_as_the_api_refuses_them,
    pages_do_not_leak_other_namespaces,
    user_settings_change_password_and_email,
    superuser_panel_manages_users,
    repository_settings_change_visibility_permissions_and_delete
);

/// A cookie-keeping client for the UI (no redirects followed, so answers can be checked).
fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` value of `name` in a response.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of hidden field `_csrf` in a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A signed-in UI session over HTTP: the cookie header and the session's CSRF token.
struct UiSession {
    cookie: String,
    csrf: String,
}

async fn ui_sign_in(s: &TestServer, user: &str, password: &str) -> UiSession {
    let c = browser_client();
    let r = c.get(format!("{}/signin", s.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pre = set_cookie(&r, "quayside_csrf").expect("pre-session cookie");
    let pre = pre.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    let token = csrf_of(&html);
    let r = c
        .post(format!("{}/signin", s.url))
        .header("cookie", &pre)
        .form(&[
            ("_csrf", token.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {user}");
    let session = set_cookie(&r, "quayside_session").expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let cookie = session.split(';').next().unwrap().to_owned();
    let html = c
        .get(format!("{}/", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("<strong>{user}</strong>")), "{html}");
    UiSession {
        csrf: csrf_of(&html),
        cookie,
    }
}

impl UiSession {
    async fn get(&self, s: &TestServer, path: &str) -> (StatusCode, String) {
        let r = browser_client()
            .get(format!("{}{path}", s.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(
        &self,
        s: &TestServer,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> StatusCode {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(t) = csrf {
            form.push(("_csrf", t));
        }
        browser_client()
            .post(format!("{}{path}", s.url))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
    }
}

async fn forms_without_the_csrf_token_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let ui = ui_sign_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let fields = [
        ("namespace", ADMIN),
        ("repository", "nocsrf"),
        ("visibility", "public"),
    ];
    // No token, another token, and a token of the right length that is not the session's.
    assert_eq!(
        ui.post(&s, "/new/repository", &fields, None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ui.post(&s, "/new/repository", &fields, Some("")).await,
        StatusCode::FORBIDDEN
    );
    let other = "A".repeat(ui.csrf.len());
    assert_eq!(
        ui.post(&s, "/new/repository", &fields, Some(&other)).await,
        StatusCode::FORBIDDEN
    );
    let (status, _) = s
        .call(
            Some(&token),
            reqwest::Method::GET,
            "/repository/admin/nocsrf",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    // Sign-in without the double-submit cookie is refused too.
    let r = browser_client()
        .post(format!("{}/signin", s.url))
        .form(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("_csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With the token the same form works.
    assert_eq!(
        ui.post(&s, "/new/repository", &fields, Some(&ui.csrf))
            .await,
        StatusCode::SEE_OTHER
    );
    let (status, _) = s
        .call(
            Some(&token),
            reqwest::Method::GET,
            "/repository/admin/nocsrf",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Sign-out needs it as well, and ends the session.
    assert_eq!(
        ui.post(&s, "/signout", &[], None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ui.post(&s, "/signout", &[], Some(&ui.csrf)).await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = ui.get(&s, "/").await;
    assert!(!html.contains("<strong>admin</strong>"), "signed out");
}

async fn script_in_description_and_label_is_inert(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let image = s.as_admin().push_image("admin/xss", "v1").await;
    let ui = ui_sign_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)> [a](javascript:alert(2))";
    assert_eq!(
        ui.post(
            &s,
            "/repository/admin/xss/description",
            &[("description", evil)],
            Some(&ui.csrf)
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let path = format!("/repository/admin/xss/manifest/{}/labels", image.digest);
    assert_eq!(
        ui.post(
            &s,
            &path,
            &[("key", "note"), ("value", "<script>alert(3)</script>")],
            Some(&ui.csrf)
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let r = browser_client()
        .get(format!("{}/repository/admin/xss", s.url))
        .header("cookie", &ui.cookie)
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;alert("), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        !html.to_lowercase().contains("href=\"javascript:"),
        "{html}"
    );
    let (_, html) = ui
        .get(
            &s,
            &format!("/repository/admin/xss/manifest/{}", image.digest),
        )
        .await;
    assert!(
        html.contains("&lt;script&gt;alert(3)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(3)"), "{html}");
    // The only script on a page is the UI's own file.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"/static/ui.js\""), "{html}");
}

async fn private_pages_are_refused_as_the_api_refuses_them(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let image = s.as_admin().push_image("admin/secret", "v1").await;
    let (other, other_pw) = s.user("outsider").await;
    let (_, _, other_token) = s.user_with_token("tokenuser").await;
    let ui = ui_sign_in(&s, &other, &other_pw).await;
    let pages = [
        "/repository/admin/secret".to_owned(),
        "/repository/admin/secret/history".to_owned(),
        "/repository/admin/secret/settings".to_owned(),
        format!("/repository/admin/secret/manifest/{}", image.digest),
    ];
    let (api_anon, _) = s
        .call(None, reqwest::Method::GET, "/repository/admin/secret", None)
        .await;
    let (api_other, _) = s
        .call(
            Some(&other_token),
            reqwest::Method::GET,
            "/repository/admin/secret",
            None,
        )
        .await;
    assert!(api_anon.is_client_error() && api_other.is_client_error());
    for p in &pages {
        let anon = browser_client()
            .get(format!("{}{p}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status(), api_anon, "anonymous {p}");
        let body = anon.text().await.unwrap();
        assert!(!body.contains(&image.digest), "{p}: {body}");
        let (status, body) = ui.get(&s, p).await;
        assert_eq!(status, api_other, "outsider {p}");
        assert!(!body.contains(&image.digest), "{p}: {body}");
    }
    // Actions are refused the same way (with a valid CSRF token).
    assert_eq!(
        ui.post(
            &s,
            "/repository/admin/secret/tag/v1/delete",
            &[],
            Some(&ui.csrf)
        )
        .await,
        api_other
    );
    // Made public, the page is open to everyone.
    s.as_admin()
        .request(
            reqwest::Method::POST,
            "/api/v1/repository/admin/secret/changevisibility",
        )
        .json(&json!({ "visibility": "public" }))
        .send()
        .await
        .unwrap();
    let anon = browser_client()
        .get(format!("{}/repository/admin/secret", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::OK);
    assert!(anon.text().await.unwrap().contains("v1"));
}

async fn pages_do_not_leak_other_namespaces(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    s.as_admin().push_image("admin/hidden-thing", "v1").await;
    let (other, other_pw) = s.user("neighbour").await;
    let ui = ui_sign_in(&s, &other, &other_pw).await;
    for p in [
        "/",
        "/?namespace=admin",
        "/?q=hidden",
        "/?namespace=admin&q=thing",
        "/new/repository",
        "/organization/admin",
    ] {
        let (_, html) = ui.get(&s, p).await;
        assert!(!html.contains("hidden-thing"), "{p}: {html}");
    }
    let anon = browser_client()
        .get(format!("{}/?q=hidden", s.url))
        .send()
        .await
        .unwrap();
    assert!(!anon.text().await.unwrap().contains("hidden-thing"));
}

async fn user_settings_change_password_and_email(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (name, password) = s.user("settler").await;
    let ui = ui_sign_in(&s, &name, &password).await;
    let other = ui_sign_in(&s, &name, &password).await;
    let (status, html) = ui.get(&s, "/user/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("settler@example.com"), "{html}");
    // The current password is required and checked.
    let new = "a-new-password-2";
    let fields = [
        ("email", "new@example.com"),
        ("new_password", new),
        ("current_password", "wrong-one"),
    ];
    assert_eq!(
        ui.post(&s, "/user/settings", &fields, Some(&ui.csrf)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        ui.post(&s, "/user/settings", &fields[..2], None).await,
        StatusCode::FORBIDDEN
    );
    let fields = [
        ("email", "new@example.com"),
        ("new_password", new),
        ("current_password", password.as_str()),
    ];
    assert_eq!(
        ui.post(&s, "/user/settings", &fields, Some(&ui.csrf)).await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = ui.get(&s, "/user/settings").await;
    assert!(html.contains("new@example.com"), "{html}");
    // The other session ended; the new password signs in, the old one does not.
    let (status, _) = other.get(&s, "/user/settings").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ui_sign_in(&s, &name, new).await;
    let r = s
        .as_basic(&name, &password)
        .send(reqwest::Method::GET, "/v2/")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Anonymous: the page is refused as the API refuses `GET /api/v1/user/`.
    let (api_status, _) = s.call(None, reqwest::Method::GET, "/user/", None).await;
    let r = browser_client()
        .get(format!("{}/user/settings", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), api_status);
}

async fn superuser_panel_manages_users(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let admin = ui_sign_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let (status, html) = admin.get(&s, "/superuser").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<tr data-name=\"admin\""), "{html}");
    // Create: the page shows the generated password once; it signs in.
    let r = browser_client()
        .post(format!("{}/superuser/users", s.url))
        .header("cookie", &admin.cookie)
        .form(&[
            ("_csrf", admin.csrf.as_str()),
            ("username", "newbie"),
            ("email", "newbie@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = r.text().await.unwrap();
    let at = html.find("id=\"new-password\"").expect("password block");
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let generated = rest[start..start + rest[start..].find('<').unwrap()].to_owned();
    let newbie = ui_sign_in(&s, "newbie", &generated).await;
    // A non-superuser is refused the panel as the API refuses it.
    let (_, _, token) = s.user_with_token("plain").await;
    let (api_status, _) = s
        .call(
            Some(&token),
            reqwest::Method::GET,
            "/superuser/users/",
            None,
        )
        .await;
    let (status, _) = newbie.get(&s, "/superuser").await;
    assert_eq!(status, api_status);
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Disable ends what the session can do; enable and delete.
    let disable = [("enabled", "false")];
    assert_eq!(
        admin
            .post(
                &s,
                "/superuser/users/newbie/enabled",
                &disable,
                Some(&admin.csrf)
            )
            .await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = newbie.get(&s, "/").await;
    assert!(
        !html.contains("<strong>newbie</strong>"),
        "a disabled user's session is gone"
    );
    assert_eq!(
        admin
            .post(&s, "/superuser/users/newbie/delete", &[], Some(&admin.csrf))
            .await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = admin.get(&s, "/superuser").await;
    assert!(!html.contains("data-name=\"newbie\""), "{html}");
}

async fn repository_settings_change_visibility_permissions_and_delete(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.as_admin().push_image("admin/settable", "v1").await;
    s.user("reader").await;
    let ui = ui_sign_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let (status, html) = ui.get(&s, "/repository/admin/settable/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("This repository is private"), "{html}");
    let base = "/repository/admin/settable";
    let t = Some(ui.csrf.as_str());
    assert_eq!(
        ui.post(
            &s,
            &format!("{base}/visibility"),
            &[("visibility", "public")],
            t
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, repo) = s.call(Some(&token), reqwest::Method::GET, base, None).await;
    assert_eq!(repo["is_public"], true);
    let grant = [("kind", "user"), ("name", "reader"), ("role", "write")];
    assert_eq!(
        ui.post(&s, &format!("{base}/permissions"), &grant, t).await,
        StatusCode::SEE_OTHER
    );
    let (_, perm) = s
        .call(
            Some(&token),
            reqwest::Method::GET,
            &format!("{base}/permissions/user/reader"),
            None,
        )
        .await;
    assert_eq!(perm["role"], "write");
    let (_, html) = ui.get(&s, &format!("{base}/settings")).await;
    assert!(html.contains("reader"), "{html}");
    let revoke = [("kind", "user"), ("name", "reader"), ("role", "none")];
    assert_eq!(
        ui.post(&s, &format!("{base}/permissions"), &revoke, t)
            .await,
        StatusCode::SEE_OTHER
    );
    let (status, _) = s
        .call(
            Some(&token),
            reqwest::Method::GET,
            &format!("{base}/permissions/user/reader"),
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(
        ui.post(&s, &format!("{base}/delete"), &[], t).await,
        StatusCode::SEE_OTHER
    );
    let (status, _) = s.call(Some(&token), reqwest::Method::GET, base, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// The browser flow.

/// Where screenshots go: `target/ui-screenshots/` of the workspace.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver, killed on drop.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start() -> Option<Driver> {
        let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver"))
        else {
            eprintln!(
                "SKIPPED: chromium and chromium-driver are not installed (.ci/run installs them); the browser flow did not run"
            );
            return None;
        };
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-sync", "--disable-component-update",
                         format!("--user-data-dir={}", profile.path().display())],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        } } });
        let v: Value = http
            .post(format!("{url}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        Some(Driver {
            child,
            url,
            http,
            session,
            _profile: profile,
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn count(&self, css: &str) -> usize {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array().map_or(0, Vec::len)
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks `css` and waits for the next page to load (every click here submits a form or
    /// follows a link): a marker set on the old document is gone on the new one.
    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.script("window.__quaysideOld = true;").await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self
                .script("return !window.__quaysideOld && document.readyState === 'complete';")
                .await;
            if v == json!(true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Chooses an `<option>` (no page load follows).
    async fn choose(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Sets a field's value directly (date inputs take keys in a locale-dependent order).
    async fn set_value(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": "arguments[0].value = arguments[1];", "args": [{ ELEMENT: e }, value] })),
        )
        .await;
    }

    async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Saves a screenshot and fails on any console error logged since the last check, on a
    /// form control without a label, or on a page whose first focusable element is not the
    /// skip link.
    async fn checkpoint(&self, name: &str) {
        let unlabelled = self
            .script(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))\
                 .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))\
                 .map(e => e.outerHTML);",
            )
            .await;
        assert_eq!(unlabelled, json!([]), "unlabelled controls at {name}");
        let first = self
            .script("return document.querySelector('a[href], button, input:not([type=hidden]), select, textarea').className;")
            .await;
        assert_eq!(first, json!("skip"), "first focusable element at {name}");
        let png = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(screenshot_dir().join(format!("{name}.png")), bytes).unwrap();
        let logs = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        let errors: Vec<&Value> = logs
            .as_array()
            .map(|l| l.iter().filter(|e| e["level"] == "SEVERE").collect())
            .unwrap_or_default();
        assert!(errors.is_empty(), "console errors at {name}: {errors:?}");
    }

    /// Reads the console, which must hold only entries containing one of `expected` (the
    /// browser logs a page answered 4xx on purpose, such as a refused sign-in, as an error).
    async fn expect_console(&self, expected: &[&str]) {
        let logs = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        for entry in logs.as_array().cloned().unwrap_or_default() {
            let message = entry["message"].as_str().unwrap_or_default();
            assert!(
                entry["level"] != "SEVERE" || expected.iter().any(|e| message.contains(e)),
                "unexpected console entry: {entry}"
            );
        }
    }

    async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.url, self.session))
            .send()
            .await;
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|c| c.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_flow_from_first_user_to_sign_out() {
    let Some(d) = Driver::start().await else {
        return;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let base = s.url.clone();

    // First user, while the database has none; then sign out and in again.
    d.goto(&format!("{base}/")).await;
    assert!(
        d.current_url().await.ends_with("/setup"),
        "{}",
        d.current_url().await
    );
    d.checkpoint("01-first-user").await;
    d.fill("#username", ADMIN).await;
    d.fill("#email", "admin@example.com").await;
    d.fill("#password", ADMIN_PASSWORD).await;
    d.click("form[action='/setup'] button[type=submit]").await;
    assert!(d.text("header .who").await.contains(ADMIN));
    d.click("header .who button").await;
    let at = d.current_url().await;
    assert!(at.ends_with("/signin"), "{at}: {}", d.source().await);
    d.fill("#username", ADMIN).await;
    d.fill("#password", "wrong-password").await;
    d.click("#signin-submit").await;
    assert!(d.text("#signin-error").await.contains("Invalid"));
    d.expect_console(&[
        "/signin - Failed to load resource: the server responded with a status of 401",
    ])
    .await;
    d.fill("#password", ADMIN_PASSWORD).await;
    d.checkpoint("02-sign-in").await;
    d.click("#signin-submit").await;
    assert!(d.text("header .who").await.contains(ADMIN));

    // Organization, team with a member, robot.
    d.goto(&format!("{base}/new/organization")).await;
    d.fill("#org-name", "acme").await;
    d.click("#create-organization").await;
    assert!(d.current_url().await.ends_with("/organization/acme"));
    d.fill("#team-name", "builders").await;
    d.fill("#team-description", "CI builders").await;
    d.click("#create-team").await;
    assert!(
        d.current_url()
            .await
            .ends_with("/organization/acme/teams/builders")
    );
    s.user("dev").await;
    d.fill("#member-name", "dev").await;
    d.click("#add-member").await;
    assert!(d.text("#members").await.contains("dev"));
    d.checkpoint("03-team").await;
    d.goto(&format!("{base}/organization/acme")).await;
    d.fill("#robot-name", "ci").await;
    d.fill("#robot-description", "pushes from CI").await;
    d.click("#create-robot").await;
    let login = d.text("#robot-login").await;
    assert!(
        login.starts_with("podman login -u='acme+ci' -p='"),
        "{login}"
    );
    assert!(
        d.text("#robot-secret")
            .await
            .contains("kubernetes.io/dockerconfigjson")
    );
    assert!(d.text("#robot-dockerconfig").await.contains("\"auths\""));
    d.checkpoint("04-robot").await;

    // A repository, then two pushes of one tag with skopeo (the second moves it).
    d.goto(&format!("{base}/new/repository")).await;
    d.choose("#namespace option[value=acme]").await;
    d.fill("#repository", "app").await;
    d.fill("#description", "# The app\n\nBuilt **nightly**.")
        .await;
    d.click("#create-repository").await;
    assert!(d.current_url().await.ends_with("/repository/acme/app"));
    assert!(d.text("#description h1").await.contains("The app"));
    assert!(d.text("#no-tags").await.contains("No tags"));
    let work = tempfile::tempdir().unwrap();
    let first = runnable_image("amd64", &[("hello", b"first build")]);
    let second = runnable_image("amd64", &[("hello", b"second build")]);
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    for (n, image) in [("one", &first), ("two", &second)] {
        let layout = work.path().join(n);
        write_layout(&layout, &[("v1", image)], None);
        run_ok(
            Command::new(require("skopeo"))
                .env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
                .args([
                    "copy",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                    &creds,
                ])
                .arg(format!("oci:{}:v1", layout.display()))
                .arg(format!("docker://{}/acme/app:v1", s.host)),
        );
        s.clock.advance_ms(2000);
    }
    d.goto(&format!("{base}/repository/acme/app")).await;
    let tags = d.text("#tags").await;
    assert!(tags.contains("v1"), "{tags}");
    assert!(
        d.source().await.contains(&second.digest),
        "the tag points at the second push"
    );
    assert!(
        d.text("#pull-commands")
            .await
            .contains(&format!("{}/acme/app:v1", s.host))
    );
    d.script("document.getElementById('tags-h').scrollIntoView();")
        .await;
    d.checkpoint("05-tags").await;

    // Tag history: restore v1 to the first push.
    d.goto(&format!("{base}/repository/acme/app/history")).await;
    assert_eq!(d.count("#history tbody tr").await, 2);
    d.checkpoint("06-history").await;
    d.click("#history form[action$='/tag/v1/restore'] button")
        .await;
    d.goto(&format!("{base}/repository/acme/app")).await;
    let page = d.source().await;
    assert!(
        page.contains(&first.digest) && !page.contains(&second.digest),
        "restored"
    );

    // Expiration.
    // Ten days from the server's clock, at a whole minute (the field's precision).
    let at_s = (s.ctx().now_ms() / 1000 + 10 * 86_400) / 60 * 60;
    let at = chrono::DateTime::from_timestamp(at_s, 0).unwrap();
    d.set_value("#exp-v1", &at.format("%Y-%m-%dT%H:%M").to_string())
        .await;
    d.click("form[action$='/tag/v1/expiration'] button").await;
    assert!(
        d.text("#tags")
            .await
            .contains(&at.format("%Y-%m-%d %H:%M UTC").to_string()),
        "{}",
        d.text("#tags").await
    );
    d.checkpoint("07-expiration").await;

    // A label on the manifest.
    d.click("#tags a[href*='/manifest/']").await;
    assert!(d.current_url().await.contains(&first.digest));
    d.fill("#label-key", "team").await;
    d.fill("#label-value", "platform").await;
    d.click("#add-label").await;
    let labels = d.text("#labels").await;
    assert!(
        labels.contains("team") && labels.contains("platform"),
        "{labels}"
    );
    d.checkpoint("08-manifest-label").await;

    // Usage log: entries of what was just done, and the chart.
    s.flush_audit().await;
    d.goto(&format!("{base}/organization/acme/logs")).await;
    let logs = d.text("#logs").await;
    assert!(logs.contains("create_repo"), "{logs}");
    assert!(
        logs.contains("create_robot") || logs.contains("org_create_team"),
        "{logs}"
    );
    assert_eq!(
        d.count("#activity-chart rect.bar").await,
        1,
        "one day of activity"
    );
    d.checkpoint("09-usage-log").await;

    // Phone width: the same pages still work.
    d.cmd(
        reqwest::Method::POST,
        "/window/rect",
        Some(json!({ "width": 390, "height": 844 })),
    )
    .await;
    d.goto(&format!("{base}/repository/acme/app")).await;
    d.checkpoint("10-phone-tags").await;
    d.cmd(
        reqwest::Method::POST,
        "/window/rect",
        Some(json!({ "width": 1280, "height": 800 })),
    )
    .await;

    // Sign out.
    d.click("header .who button").await;
    let at = d.current_url().await;
    assert!(at.ends_with("/signin"), "{at}: {}", d.source().await);
    d.goto(&format!("{base}/repository/acme/app")).await;
    assert!(
        d.source().await.contains("401"),
        "private repository after sign-out"
    );
    d.expect_console(&[
        "/repository/acme/app - Failed to load resource: the server responded with a status of 401",
    ])
    .await;
    d.checkpoint("11-signed-out").await;
    d.quit().await;
}

/// Benchmark, run by hand (`cargo nextest run -p quayside --test it --run-ignored ignored-only
/// -E 'test(thousand_tags)' --no-capture`): a repository with 1,000 tags, then the p50 and p95
/// of 20 renders of its page (all tags in one table) by a signed-in user, timed on loopback.
/// Figures in docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn thousand_tags_page_render_time() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.init_admin().await;
    let image = s.as_admin().push_image("admin/many", "t0000").await;
    for i in 1..1000 {
        let (status, _) = s
            .call(
                Some(&token),
                reqwest::Method::PUT,
                &format!("/repository/admin/many/tag/t{i:04}"),
                Some(json!({ "manifest_digest": image.digest })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "tag {i}");
    }
    let ui = ui_sign_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let (status, html) = ui.get(&s, "/repository/admin/many").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<tr data-name=\"t").count(), 1000);
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let (status, _) = ui.get(&s, "/repository/admin/many").await;
        times.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
    }
    times.sort();
    println!(
        "1,000-tag repository page: p50 {:?}, p95 {:?}, {} KiB of HTML",
        times[10],
        times[18],
        html.len() / 1024
    );
}

/// Under HTTPS both cookies are `Secure` (besides `HttpOnly` and `SameSite=Lax`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_under_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let options = Options {
        files: vec![
            ("ssl.cert".into(), cert.cert.pem()),
            ("ssl.key".into(), cert.signing_key.serialize_pem()),
        ],
        ..Default::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, options).await;
    assert!(s.url.starts_with("https://"));
    s.init_admin().await;
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(format!("{}/signin", s.url)).send().await.unwrap();
    let pre = set_cookie(&r, "quayside_csrf").expect("pre-session cookie");
    assert!(
        pre.contains("; Secure") && pre.contains("HttpOnly"),
        "{pre}"
    );
    let token = csrf_of(&r.text().await.unwrap());
    let r = c
        .post(format!("{}/signin", s.url))
        .header("cookie", pre.split(';').next().unwrap())
        .form(&[
            ("_csrf", token.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(&r, "quayside_session").expect("session cookie");
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(session.contains(attribute), "{attribute}: {session}");
    }
}
