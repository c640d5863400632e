#!/usr/bin/env bash
# Measures Quayside and CNCF Distribution side by side with registry-bench (the harness we are
# judged by), on the same machine, each on a fresh data directory. Run by hand:
#
#   registry/benches/compare.sh [RUNS]          # default 3 runs; results in target/bench/
#
# Needs: a release build (made here), docker-registry, skopeo, wrk, curl (Debian packages) and
# registry-bench (REGISTRY_BENCH, default ../shared/bench/registry-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
bench=${REGISTRY_BENCH:-../shared/bench/registry-bench}
out=target/bench
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release -p quayside
qport=5101 dport=5102

# Quayside, zero configuration, its first user created through the API.
target/release/quayside serve --listen 127.0.0.1:$qport --data-dir "$work/quayside" --log-format json \
  2>"$work/quayside.log" &
qpid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$qport/health/instance" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$qport/api/v1/user/initialize" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"bench-password1","email":"bench@example.com"}' >/dev/null
"$bench" --url "http://127.0.0.1:$qport" --user bench --password bench-password1 --namespace bench \
  --pid $qpid --label quayside --runs "$runs" --out "$out/quayside.json"
kill $qpid; wait $qpid 2>/dev/null || true

# CNCF Distribution with its upstream defaults (filesystem storage, no auth).
cat >"$work/distribution.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/distribution
http:
  addr: 127.0.0.1:$dport
YAML
docker-registry serve "$work/distribution.yml" 2>"$work/distribution.log" &
dpid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$dport/v2/" >/dev/null && break; sleep 0.1; done
"$bench" --url "http://127.0.0.1:$dport" --namespace bench --pid $dpid --label distribution \
  --runs "$runs" --out "$out/distribution.json"
kill $dpid; wait $dpid 2>/dev/null || true

"$bench" --compare "$out/quayside.json" "$out/distribution.json"
