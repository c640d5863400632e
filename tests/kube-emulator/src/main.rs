//! `kube-emulator` binary: serve the emulated API until interrupted.
//!
//! ```text
//! cargo run -p kube-emulator -- --listen 127.0.0.1:6443 --kubeconfig /tmp/kubeconfig \
//!     --workload 'python=python3 -m http.server {port:8080} --bind 127.0.0.1' --rbac
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kube_emulator::{Emulator, Mapping};

#[derive(Parser, Debug)]
#[command(
    name = "kube-emulator",
    about = "Emulated Kubernetes API server for tests (never a real cluster)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for kubectl, Helm and kube-rs.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// `IMAGE_PREFIX=COMMAND` image mapping (repeatable); turns the workload runner on.
    #[arg(long = "workload", value_name = "IMAGE_PREFIX=COMMAND")]
    workloads: Vec<String>,
    /// Run controllers and the kubelet even without mappings (pods then wait for an image).
    #[arg(long)]
    run_workloads: bool,
    /// Enforce RBAC for ServiceAccount tokens.
    #[arg(long)]
    rbac: bool,
    /// Directory for pod directories and volume claims (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (kubectl and Helm then send no credentials).
    #[arg(long)]
    plain_http: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // KUBE_EMULATOR_LOG=debug logs every request.
    let level = std::env::var("KUBE_EMULATOR_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut b = Emulator::builder()
        .listen(args.listen)
        .rbac(args.rbac)
        .plain_http(args.plain_http);
    for w in &args.workloads {
        let m = Mapping::parse(w).ok_or_else(|| {
            anyhow::anyhow!("invalid --workload {w:?}: want IMAGE_PREFIX=COMMAND")
        })?;
        b = b.workload(m);
    }
    if args.run_workloads {
        b = b.workloads(true);
    }
    if let Some(k) = &args.kubeconfig {
        b = b.kubeconfig_path(k);
    }
    if let Some(d) = &args.data_dir {
        b = b.data_dir(d);
    }
    let mut emu = b.start().await?;
    println!("kube-emulator listening on {}", emu.url());
    println!("kubeconfig: {}", emu.kubeconfig_path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    emu.stop();
    Ok(())
}
