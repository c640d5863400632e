//! `quayside builder`: the program an executor runs for one build attempt (the builder side of
//! the protocol in `service::content::builds::protocol`, described in `docs/builds.md`).
//!
//! Rules: it registers with the build manager using its build token (`QUAYSIDE_BUILD_TOKEN`),
//! fetches the build context (`unpacking`), pulls the base images (`pulling`), builds with
//! buildah (`building`: unprivileged flags, `--isolation chroot`, vfs storage under its work
//! directory), then takes a push credential for the repository and copies the image to every
//! tag with skopeo (`pushing`), and reports `complete` with the manifest's digest or `error`
//! with buildah's (or skopeo's) message. Every output line is sent as a log line (`STEP ...`
//! lines as `command`). It sends a heartbeat every few seconds; when the manager answers
//! `410 Gone` (cancelled, restarted) it kills its buildah or skopeo child and exits with
//! status 3 without pushing. Test pause point (`QUAYSIDE_TEST_PAUSE_AT`): `builder.built`
//! (after the build, before the push).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

use crate::service::content::builds::protocol::{
    Finish, GitSource, JobSpec, LogLine, PushToken, Report,
};

/// Exit status when the manager said the attempt is over.
pub const EXIT_GONE: i32 = 3;

/// The local name the image is built under, in the builder's own storage.
const LOCAL_IMAGE: &str = "localhost/quayside-build:latest";

struct Manager {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The running buildah or skopeo, killed when the manager says stop.
    child: Arc<AtomicU32>,
    /// Log lines not sent yet.
    pending: Mutex<Vec<LogLine>>,
}

enum Call {
    Ok(reqwest::Response),
    Gone(String),
}

impl Manager {
    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> anyhow::Result<Call> {
        let response = self
            .http
            .post(format!("{}/buildman/v1/{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("calling the build manager ({path})"))?;
        match response.status() {
            s if s.is_success() => Ok(Call::Ok(response)),
            reqwest::StatusCode::GONE => Ok(Call::Gone(response.text().await.unwrap_or_default())),
            s => Err(anyhow!(
                "the build manager answered {s} to {path}: {}",
                response.text().await.unwrap_or_default()
            )),
        }
    }

    /// Sends a report (with the pending log lines); stops the builder on `410`.
    async fn report(
        &self,
        phase: Option<&str>,
        status: Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        let logs = std::mem::take(&mut *self.pending.lock().await);
        let report = Report {
            phase: phase.map(str::to_owned),
            status,
            logs,
        };
        match self.post("report", &report).await? {
            Call::Ok(_) => Ok(()),
            Call::Gone(why) => self.stop(&why),
        }
    }

    async fn log(&self, message: impl Into<String>, kind: Option<&str>) {
        let message: String = message.into();
        println!("{message}");
        self.pending.lock().await.push(LogLine {
            message,
            kind: kind.map(str::to_owned),
        });
    }

    fn stop(&self, why: &str) -> ! {
        eprintln!("the build manager stopped this build: {why}");
        let pid = self.child.load(Ordering::SeqCst);
        // Only a process that is still our child (its pid may have been reused once reaped).
        if pid > 1
            && is_our_child(pid)
            && let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        std::process::exit(EXIT_GONE);
    }
}

/// Whether `pid` is a child of this process (its parent in `/proc/<pid>/stat`).
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse::<u32>().ok())
        == Some(std::process::id())
}

/// Runs one build attempt. `manager` is the registry's URL, `work_dir` the attempt's own
/// directory.
pub async fn run(manager: &str, work_dir: &Path, token: String) -> anyhow::Result<()> {
    std::fs::create_dir_all(work_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let m = Arc::new(Manager {
        http,
        base: manager.trim_end_matches('/').to_owned(),
        token,
        child: Arc::new(AtomicU32::new(0)),
        pending: Mutex::new(Vec::new()),
    });
    let job: JobSpec = match m.post("register", &json!({})).await? {
        Call::Ok(r) => r.json().await.context("reading the job")?,
        Call::Gone(why) => m.stop(&why),
    };
    eprintln!(
        "registered for build {} of {}",
        job.build_uuid, job.repository
    );
    // Heartbeats (they also flush log lines).
    let beat = m.clone();
    let every = Duration::from_secs(job.heartbeat_s.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = beat.report(None, None).await {
                eprintln!("heartbeat failed: {e:#}");
            }
        }
    });
    let outcome = build(&m, &job, work_dir).await;
    let finish = match outcome {
        Ok(digest) => Finish {
            phase: "complete".into(),
            error: None,
            digest: Some(digest),
        },
        Err(e) => Finish {
            phase: "error".into(),
            error: Some(format!("{e:#}")),
            digest: None,
        },
    };
    // Flush the last lines, then finish.
    m.report(None, None).await?;
    match m.post("finish", &finish).await? {
        Call::Ok(_) => Ok(()),
        Call::Gone(why) => m.stop(&why),
    }
}

async fn build(m: &Manager, job: &JobSpec, dir: &Path) -> anyhow::Result<String> {
    m.report(Some("unpacking"), None).await?;
    let context_root = dir.join("context");
    std::fs::create_dir_all(&context_root)?;
    fetch_context(m, job, dir, &context_root).await?;
    let dockerfile = inside(&context_root, &job.dockerfile_path)?;
    let context = inside(&context_root, &job.context)?;
    if !dockerfile.is_file() {
        return Err(anyhow!(
            "Could not find a Dockerfile at {} in the build context",
            job.dockerfile_path
        ));
    }
    let text = std::fs::read_to_string(&dockerfile).context("reading the Dockerfile")?;
    let total = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let storage = Storage::new(dir);

    m.report(
        Some("pulling"),
        Some(json!({ "total_commands": total, "current_command": 0, "pull_completion": 0.0 })),
    )
    .await?;
    for base in base_images(&text) {
        m.log(format!("Pulling base image {base}"), None).await;
        let mut args = storage.args();
        args.extend(["pull".into(), "--quiet".into()]);
        if let Some(creds) = &job.pull_credentials {
            args.extend(["--creds".into(), creds.clone()]);
        }
        if job.insecure && base.starts_with(&job.registry) {
            args.push("--tls-verify=false".into());
        }
        args.push(base.clone());
        run_streamed(m, "buildah", &args, None).await?;
    }

    m.report(
        Some("building"),
        Some(json!({ "total_commands": total, "current_command": 0 })),
    )
    .await?;
    let mut args = storage.args();
    args.extend([
        "bud".into(),
        "--isolation".into(),
        "chroot".into(),
        "--layers=false".into(),
        "-t".into(),
        LOCAL_IMAGE.into(),
        "-f".into(),
        dockerfile.display().to_string(),
    ]);
    if let Some(creds) = &job.pull_credentials {
        args.extend(["--creds".into(), creds.clone()]);
    }
    if job.insecure {
        args.push("--tls-verify=false".into());
    }
    args.push(context.display().to_string());
    run_streamed(m, "buildah", &args, Some(total)).await?;
    m.report(None, None).await?;
    crate::service::pause::PausePoints::default()
        .point("builder.built")
        .await;

    m.report(Some("pushing"), Some(json!({ "push_completion": 0.0 })))
        .await?;
    let push: PushToken = match m.post("push-token", &json!({})).await? {
        Call::Ok(r) => r.json().await.context("reading the push credential")?,
        Call::Gone(why) => m.stop(&why),
    };
    let digest_file = dir.join("digest");
    for tag in &job.tags {
        let destination = format!("docker://{}/{}:{}", job.registry, job.repository, tag);
        m.log(
            format!("Pushing {}/{}:{tag}", job.registry, job.repository),
            None,
        )
        .await;
        let mut args = vec![
            "copy".to_owned(),
            "--quiet".into(),
            "--dest-registry-token".into(),
            push.token.clone(),
            "--digestfile".into(),
            digest_file.display().to_string(),
        ];
        if job.insecure {
            args.push("--dest-tls-verify=false".into());
        }
        args.push(storage.reference(LOCAL_IMAGE));
        args.push(destination);
        run_streamed(m, "skopeo", &args, None).await?;
    }
    let digest = std::fs::read_to_string(&digest_file)
        .context("reading the pushed digest")?
        .trim()
        .to_owned();
    m.log(format!("Pushed {digest}"), None).await;
    m.report(None, Some(json!({ "push_completion": 1.0 })))
        .await?;
    Ok(digest)
}

/// buildah's storage for this attempt: vfs under the work directory.
struct Storage {
    root: PathBuf,
    runroot: PathBuf,
}

impl Storage {
    fn new(dir: &Path) -> Storage {
        Storage {
            root: dir.join("storage"),
            runroot: dir.join("run"),
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.root.display().to_string(),
            "--runroot".into(),
            self.runroot.display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
        ]
    }

    /// The image as skopeo names it in this storage.
    fn reference(&self, image: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{image}",
            self.root.display(),
            self.runroot.display()
        )
    }
}

/// A path of the archive, from its root, kept inside `root`.
fn inside(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|s| s == "..") {
        return Err(anyhow!("{path:?} leaves the build context"));
    }
    Ok(if relative.is_empty() {
        root.to_owned()
    } else {
        root.join(relative)
    })
}

/// The images `FROM` lines name (not `scratch`, not earlier stages).
fn base_images(dockerfile: &str) -> Vec<String> {
    let mut stages = Vec::new();
    let mut images = Vec::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().map(|w| w.eq_ignore_ascii_case("FROM")) != Some(true) {
            continue;
        }
        let mut rest = words[1..].iter().filter(|w| !w.starts_with("--"));
        let Some(image) = rest.next() else { continue };
        let image = image.to_string();
        let is_stage = stages.contains(&image.to_ascii_lowercase());
        if let (Some(kw), Some(name)) = (rest.next(), rest.next())
            && kw.eq_ignore_ascii_case("AS")
        {
            stages.push(name.to_ascii_lowercase());
        }
        if image != "scratch" && !is_stage && !images.contains(&image) {
            images.push(image);
        }
    }
    images
}

/// Downloads the build context and unpacks it into `root`: a tar archive (gzip, bzip2 or xz
/// compressed, or plain), or a lone Dockerfile.
async fn fetch_context(m: &Manager, job: &JobSpec, dir: &Path, root: &Path) -> anyhow::Result<()> {
    if let Some(git) = &job.git {
        return clone(m, git, dir, root).await;
    }
    m.log("Fetching the build context", None).await;
    let mut request = m.http.get(&job.archive_url);
    if job.archive_with_token {
        request = request.bearer_auth(&m.token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("fetching the build context from {}", job.archive_url))?;
    if response.status() == reqwest::StatusCode::GONE {
        m.stop("the build is no longer running");
    }
    if !response.status().is_success() {
        return Err(anyhow!(
            "fetching the build context from {} answered {}",
            job.archive_url,
            response.status()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .context("reading the build context")?;
    let archive = dir.join("context.archive");
    std::fs::write(&archive, &bytes)?;
    let is_tar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
    let compressed = bytes.starts_with(&[0x1f, 0x8b])
        || bytes.starts_with(b"BZh")
        || bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']);
    if is_tar || compressed {
        let output = tokio::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(root)
            .arg("--no-same-owner")
            .output()
            .await
            .context("running tar")?;
        if !output.status.success() {
            return Err(anyhow!(
                "the build context is not a readable archive: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    } else {
        std::fs::write(root.join("Dockerfile"), &bytes)?;
    }
    m.log(format!("Unpacked {} bytes", bytes.len()), None).await;
    Ok(())
}

/// A trigger's build context: `git clone` of the repository, checked out at the commit. Over
/// ssh with the trigger's deploy key (`GIT_SSH_COMMAND`; the host key is not checked, as
/// Quay's builders do not), other URLs plainly; never prompts.
async fn clone(m: &Manager, git: &GitSource, dir: &Path, root: &Path) -> anyhow::Result<()> {
    m.log(format!("Cloning {} at {}", git.url, git.commit), None)
        .await;
    let mut env: Vec<(&str, String)> = vec![("GIT_TERMINAL_PROMPT", "0".into())];
    if let Some(key) = &git.private_key {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join("deploy-key");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .context("writing the deploy key")?;
        file.write_all(key.as_bytes())?;
        env.push((
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
                 -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                path.display()
            ),
        ));
    }
    let steps: [Vec<String>; 2] = [
        vec![
            "clone".into(),
            "--quiet".into(),
            "--no-checkout".into(),
            "--".into(),
            git.url.clone(),
            root.display().to_string(),
        ],
        vec![
            "-C".into(),
            root.display().to_string(),
            "checkout".into(),
            "--quiet".into(),
            "--detach".into(),
            git.commit.clone(),
            "--".into(),
        ],
    ];
    for args in steps {
        let output = tokio::process::Command::new("git")
            .args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .await
            .context("running git")?;
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            if !line.trim().is_empty() {
                m.log(line.to_owned(), None).await;
            }
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            let what = if args[0] == "clone" {
                "clone"
            } else {
                "checkout"
            };
            return Err(anyhow!("git {what} failed: {}", last.trim()));
        }
    }
    let _ = std::fs::remove_file(dir.join("deploy-key"));
    m.log(format!("Checked out {}", git.commit), None).await;
    Ok(())
}

/// Runs a tool, sending each output line as a log line; fails with its last error line.
/// `steps` counts Dockerfile steps for the status (buildah's `STEP n/m:` lines).
async fn run_streamed(
    m: &Manager,
    program: &str,
    args: &[String],
    steps: Option<usize>,
) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    m.child.store(child.id().unwrap_or(0), Ordering::SeqCst);
    let stdout = child.stdout.take().map(BufReader::new);
    let stderr = child.stderr.take().map(BufReader::new);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
    for (is_err, reader) in [
        (
            false,
            stdout.map(|r| Box::new(r) as Box<dyn tokio::io::AsyncBufRead + Unpin + Send>),
        ),
        (
            true,
            stderr.map(|r| Box::new(r) as Box<dyn tokio::io::AsyncBufRead + Unpin + Send>),
        ),
    ] {
        let Some(reader) = reader else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = reader.lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send((is_err, line));
            }
        });
    }
    drop(tx);
    let mut last_error = String::new();
    let mut step = 0usize;
    while let Some((is_err, line)) = rx.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("STEP ") {
            step += 1;
            m.log(line, Some("command")).await;
            if let Some(total) = steps {
                m.report(
                    None,
                    Some(json!({ "total_commands": total, "current_command": step })),
                )
                .await?;
            }
            continue;
        }
        if is_err {
            last_error = line.clone();
        }
        m.log(line, None).await;
    }
    let status = child.wait().await?;
    m.child.store(0, Ordering::SeqCst);
    if status.success() {
        Ok(())
    } else if last_error.is_empty() {
        Err(anyhow!("{program} failed ({status})"))
    } else {
        Err(anyhow!("{}", last_error.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_skip_scratch_and_stages() {
        let df = "FROM alpine:3 AS build\nRUN x\nFROM scratch\nCOPY --from=build /a /a\nFROM build\nFROM --platform=linux/amd64 busybox\n";
        assert_eq!(base_images(df), vec!["alpine:3", "busybox"]);
    }

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/w/context");
        assert_eq!(inside(root, "/").unwrap(), root);
        assert_eq!(
            inside(root, "/sub/Dockerfile").unwrap(),
            root.join("sub/Dockerfile")
        );
        assert!(inside(root, "/../etc/passwd").is_err());
    }
}
