#!/usr/bin/env bash
# Builds the `quayside` (registry, workers, builder subcommand) and `quayside-operator` images
# with buildah from binaries cargo built, into OCI layouts, and optionally pushes them.
#
#   scripts/build-images.sh                       # release binaries (cargo build --release first)
#   scripts/build-images.sh --profile debug       # debug binaries (CI's cheap check)
#   scripts/build-images.sh --bin-dir DIR         # binaries from another target directory
#   scripts/build-images.sh --push 127.0.0.1:8080/admin --creds admin:pw --tls-verify=false
#
# Output: target/images/<name> (OCI layouts, tag = the workspace version); with --push also
# <registry/namespace>/<name>:<version>. Prints each image's manifest digest.
#
# What is in an image (distroless-style, one layer): the binary (stripped), the shared libraries
# `ldd` lists and the dynamic loader, CA certificates, /etc/passwd and /etc/group naming the
# non-root user 1001 ("quayside"), /tmp, and for the registry /var/lib/quayside (its data
# directory, owned by that user). No shell, no package manager.
#
# Reproducible: the same binaries and host files give the same digest. Every file is staged
# with mtime 0 and fixed owners and modes, added as one name-sorted archive (one layer), and the image is
# committed with `--timestamp 0` (created time and history are fixed too); labels and
# annotations carry only the source URL, the version and the git revision.
#
# buildah runs with its own storage under target/images/.buildah (vfs driver, chroot isolation),
# so it needs no daemon and leaves the system's container storage alone.
set -euo pipefail

cd "$(dirname "$0")/.."
profile=release
bindir=""
out=target/images
push=""
creds=""
tls_verify=true
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --bin-dir) bindir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    --creds) creds=$2; shift 2 ;;
    --tls-verify=false) tls_verify=false; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

case "$profile" in
  release) bindir=${bindir:-target/release} ;;
  debug|dev) bindir=${bindir:-target/debug} ;;
  *) echo "build-images.sh: --profile release or debug" >&2; exit 2 ;;
esac
for b in quayside quayside-operator; do
  [ -x "$bindir/$b" ] || { echo "build-images.sh: $bindir/$b missing (cargo build ${profile/debug/} -p ${b})" >&2; exit 1; }
done
command -v buildah >/dev/null || { echo "build-images.sh: buildah is not installed" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
source_url="https://github.com/quayside/quayside"
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || { echo "build-images.sh: $certs missing (apt-get install ca-certificates)" >&2; exit 1; }

mkdir -p "$out"
storage="$out/.buildah"
bah() {
  BUILDAH_ISOLATION=chroot buildah --root "$storage/root" --runroot "$storage/run" \
    --storage-driver vfs "$@"
}

# stage NAME BINARY DATA_DIR: the image's root filesystem in $out/rootfs-NAME.
stage() {
  local name=$1 binary=$2 datadir=$3 root="$out/rootfs-$1"
  rm -rf "$root"
  mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/tmp"
  cp "$binary" "$root/usr/bin/$name"
  if command -v strip >/dev/null; then strip --strip-debug "$root/usr/bin/$name"; fi
  # The loader and the libraries the binary links, at the paths it looks them up.
  ldd "$binary" | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -L "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nquayside:x:1001:1001:quayside:/home/quayside:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nquayside:x:1001:\n' >"$root/etc/group"
  mkdir -p "$root/home/quayside"
  if [ -n "$datadir" ]; then mkdir -p "$root$datadir"; fi
  # Fixed modes, owners and times.
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -type f -exec chmod 0644 {} +
  chmod 0755 "$root/usr/bin/$name"
  find "$root" -name 'ld-linux*' -exec chmod 0755 {} +
  chmod 1777 "$root/tmp"
  chown -R 0:0 "$root"
  chown 1001:1001 "$root/home/quayside"
  if [ -n "$datadir" ]; then chown 1001:1001 "$root$datadir"; chmod 0700 "$root$datadir"; fi
  find "$root" -exec touch -h -d @0 {} +
  # One archive, entries sorted by name, numeric owners, no access/change times: `buildah add`
  # unpacks it keeping owners and modes.
  tar --sort=name --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$root.tar" .
}

# build NAME ENTRYPOINT_JSON CMD_JSON ENV...: commits $out/NAME:$version, prints its digest.
build() {
  local name=$1 entrypoint=$2 cmd=$3; shift 3
  local ctr
  ctr=$(bah from --quiet scratch)
  bah add --quiet "$ctr" "$out/rootfs-$name.tar" / >/dev/null
  local args=(--entrypoint "$entrypoint" --cmd "$cmd" --user 1001:1001 --workingdir /
    --os linux --arch amd64 --created-by "scripts/build-images.sh")
  for e in "$@"; do args+=(--env "$e"); done
  for kv in "org.opencontainers.image.source=$source_url" \
            "org.opencontainers.image.version=$version" \
            "org.opencontainers.image.revision=$revision" \
            "org.opencontainers.image.title=$name" \
            "org.opencontainers.image.licenses=Apache-2.0"; do
    args+=(--label "$kv" --annotation "$kv")
  done
  bah config "${args[@]}" "$ctr"
  rm -rf "$out/$name"
  bah commit --quiet --format oci --timestamp 0 --rm "$ctr" "oci:$out/$name:$version" >/dev/null
  local digest
  digest=$(skopeo inspect --format '{{.Digest}}' "oci:$out/$name:$version")
  echo "$name:$version $digest"
  if [ -n "$push" ]; then
    local flags=(--dest-tls-verify="$tls_verify")
    [ -n "$creds" ] && flags+=(--dest-creds "$creds")
    # Layers stay as committed (uncompressed), so the pushed digest is the built one.
    skopeo copy --quiet --preserve-digests "${flags[@]}" \
      "oci:$out/$name:$version" "docker://$push/$name:$version"
    echo "pushed $push/$name:$version"
  fi
}

stage quayside "$bindir/quayside" /var/lib/quayside
stage quayside-operator "$bindir/quayside-operator" ""
build quayside '["/usr/bin/quayside"]' '["serve"]' \
  QUAYSIDE_LISTEN=0.0.0.0:8080 QUAYSIDE_DATA_DIR=/var/lib/quayside \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
build quayside-operator '["/usr/bin/quayside-operator"]' '["run"]' \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
rm -rf "$out"/rootfs-quayside{,-operator}{,.tar}
