//! CNCF Distribution (Debian's `docker-registry`) as an upstream registry for tests, open or
//! behind htpasswd, and a plain HTTP push into it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::common::oci::{self, Image};
use crate::common::tools::{free_port, require, run_ok};

/// A Debian `docker-registry` on a loopback port, killed on drop.
pub struct Distribution {
    child: Option<Child>,
    config: PathBuf,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Distribution {
    /// `htpasswd`: one user and password (bcrypt, made with apache2-utils' `htpasswd`).
    pub async fn start(htpasswd: Option<(&str, &str)>) -> Distribution {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut auth = String::new();
        if let Some((user, password)) = htpasswd {
            let file = dir.path().join("htpasswd");
            let out = run_ok(Command::new(require("htpasswd")).args(["-Bbn", user, password]));
            std::fs::write(&file, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            );
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut d = Distribution {
            child: None,
            config,
            addr,
            _dir: dir,
        };
        d.run().await;
        d
    }

    pub async fn run(&mut self) {
        let child = Command::new(require("docker-registry"))
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("http://{}/v2/", self.addr))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("docker-registry did not start on {}", self.addr);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pushes an image to a plain registry over HTTP (POST then PUT per blob).
pub async fn push_upstream(
    base: &str,
    auth: Option<(&str, &str)>,
    repo: &str,
    tag: &str,
    image: &Image,
) {
    let client = reqwest::Client::new();
    let with = |r: reqwest::RequestBuilder| match auth {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    for blob in image.blobs() {
        let r = with(client.post(format!("{base}/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "upload start");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = with(client.put(format!("{location}{sep}digest={}", oci::sha256(blob))))
            .header("Content-Type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "upload put");
    }
    let r = with(client.put(format!("{base}/v2/{repo}/manifests/{tag}")))
        .header("Content-Type", image.media_type)
        .body(image.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "manifest put");
}
