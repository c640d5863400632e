//! Builders for test content: blobs, images, indexes, OCI layouts on disk.

use std::path::Path;

use serde_json::json;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha256(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
    )
}

pub fn sha512(data: &[u8]) -> String {
    format!(
        "sha512:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA512, data).as_ref())
    )
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::getrandom(&mut v).expect("random");
    v
}

pub fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha256(data), "size": data.len() })
}

/// An image: config, layers and the manifest bytes that reference them.
#[derive(Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub digest: String,
}

impl Image {
    /// An OCI image with `n` random layers (not real tarballs: fine for the HTTP API).
    pub fn random(n: usize) -> Image {
        let layers = (0..n)
            .map(|_| random_bytes(1024 + n * 7))
            .collect::<Vec<_>>();
        Image::build(layers, "amd64", false)
    }

    /// Builds an image from layer bytes. `docker` selects Docker schema 2 media types.
    pub fn build(layers: Vec<Vec<u8>>, arch: &str, docker: bool) -> Image {
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>() },
            "config": {},
            "created": "2024-01-01T00:00:00Z",
            "nonce": hex::encode(random_bytes(8)),
        }))
        .expect("json");
        let (mt, cfg_mt, layer_mt) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": descriptor(cfg_mt, &config),
            "layers": layers.iter().map(|l| descriptor(layer_mt, l)).collect::<Vec<_>>(),
        }))
        .expect("json");
        let digest = sha256(&manifest);
        Image {
            config,
            layers,
            manifest,
            media_type: mt,
            digest,
        }
    }

    pub fn blobs(&self) -> impl Iterator<Item = &Vec<u8>> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }
}

/// An index (or Docker list) over images, with platforms.
pub fn index(children: &[(&Image, &str)], docker: bool) -> Vec<u8> {
    let manifests: Vec<_> = children
        .iter()
        .map(|(img, arch)| {
            let mut d = descriptor(img.media_type, &img.manifest);
            d["platform"] = json!({ "architecture": arch, "os": "linux" });
            d
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": if docker { DOCKER_LIST } else { OCI_INDEX },
        "manifests": manifests,
    }))
    .expect("json")
}

/// A real gzipped tarball holding `files` (made with the system `tar`).
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    for (name, content) in files {
        std::fs::write(root.join(name), content).expect("write");
    }
    let out = dir.path().join("layer.tar.gz");
    let status = std::process::Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=2024-01-01",
            "--owner=0",
            "--group=0",
            "-czf",
        ])
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
    std::fs::read(out).expect("read layer")
}

/// An image whose layers are real gzipped tarballs and whose diff_ids are right, so container
/// engines can unpack it.
pub fn runnable_image(arch: &str, files: &[(&str, &[u8])]) -> Image {
    let layer = tar_gz(files);
    let uncompressed = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin_bytes(&layer);
    let mut image = Image::build(vec![layer], arch, false);
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [sha256(&uncompressed)] },
        "config": { "Cmd": ["/hello"] },
        "created": "2024-01-01T00:00:00Z",
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": image.layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    }))
    .expect("json");
    image.digest = sha256(&manifest);
    image.config = config;
    image.manifest = manifest;
    image
}

trait StdinBytes {
    fn stdin_bytes(&mut self, input: &[u8]) -> Vec<u8>;
}

impl StdinBytes for std::process::Command {
    fn stdin_bytes(&mut self, input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("output");
        writer.join().expect("writer").expect("write stdin");
        out.stdout
    }
}

/// Writes an OCI image layout holding `images` (tag, image) and optionally an index under
/// `index_tag`.
pub fn write_layout(dir: &Path, images: &[(&str, &Image)], index: Option<(&str, &[u8])>) {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), data).expect("write blob");
    };
    let mut entries = Vec::new();
    for (tag, image) in images {
        for b in image.blobs() {
            put(b);
        }
        put(&image.manifest);
        if !tag.is_empty() {
            let mut d = descriptor(image.media_type, &image.manifest);
            d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
            entries.push(d);
        }
    }
    if let Some((tag, bytes)) = index {
        put(bytes);
        let mut d = descriptor(OCI_INDEX, bytes);
        d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        entries.push(d);
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": entries })).expect("json"),
    )
    .expect("index");
}
