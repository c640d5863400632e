//! Two `quayside-operator run` processes share one Lease: one leads, the other waits, and a
//! graceful shutdown of the leader hands over at once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;

struct Replica {
    child: Child,
    metrics: String,
}

impl Replica {
    fn start(kubeconfig: &std::path::Path, identity: &str) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(operator_binary())
            .env("KUBECONFIG", kubeconfig)
            .args([
                "run",
                "--lease-namespace",
                "default",
                "--identity",
                identity,
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start quayside-operator");
        Replica {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    async fn leading(&self) -> Option<bool> {
        let text = reqwest::get(&self.metrics).await.ok()?.text().await.ok()?;
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix("quayside_operator_leader "))?;
        Some(v.trim() == "1")
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM");
        self.child.wait().expect("wait")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_hand_over_on_shutdown() {
    let (emu, _scripts) = emulator(false).await;
    install_crds(&emu).await;
    let mut one = Replica::start(emu.kubeconfig_path(), "one");
    wait_for(Duration::from_secs(30), "replica one to lead", || async {
        one.leading().await.filter(|l| *l)
    })
    .await;
    let two = Replica::start(emu.kubeconfig_path(), "two");
    wait_for(
        Duration::from_secs(30),
        "replica two to serve metrics",
        || async { two.leading().await },
    )
    .await;
    // Two stays a follower while one renews.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            two.leading().await,
            Some(false),
            "two leads while one holds the Lease"
        );
        assert_eq!(one.leading().await, Some(true));
    }
    // A graceful shutdown releases the Lease; two takes over without waiting for expiry.
    let status = one.terminate();
    assert!(status.success(), "the leader exited with {status}");
    wait_for(Duration::from_secs(10), "replica two to lead", || async {
        two.leading().await.filter(|l| *l)
    })
    .await;
}
