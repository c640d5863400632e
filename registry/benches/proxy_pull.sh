#!/usr/bin/env bash
# Pulls through a proxy-cache organization (issue 13): a cached pull within 10% of a pull of a
# normal repository (registry-bench pull A), and a cold pull at 80% or more of the upstream's
# own speed. Each round, on fresh data: CNCF Distribution as the upstream gets scenario A
# pushed and pulled (its own pull speed); a fresh Quayside proxies it (organization
# `proxyorg`, upstream `127.0.0.1:PORT/library`): a first read-only pull of A (cold: every blob
# streamed from the upstream while stored), a second (cached); then A is pushed to and pulled
# from a normal repository of the same Quayside. Run by hand:
#
#   registry/benches/proxy_pull.sh [ROUNDS]     # default 3; JSON in target/bench/proxy/
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
bench=${REGISTRY_BENCH:-../shared/bench/registry-bench}
out=target/bench/proxy
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release -p quayside
uport=5121 qport=5122
light=(--runs 1 --scenarios A --parallel 2 --blob-gets 4 --wrk-duration 1)

for round in $(seq 1 "$rounds"); do
  dir="$work/$round"
  mkdir -p "$dir"
  cat >"$dir/upstream.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/upstream
http:
  addr: 127.0.0.1:$uport
YAML
  docker-registry serve "$dir/upstream.yml" 2>"$dir/upstream.log" &
  upid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$uport/v2/" >/dev/null && break; sleep 0.1; done
  "$bench" --url "http://127.0.0.1:$uport" --namespace library --pid $upid --label upstream \
    "${light[@]}" --out "$out/upstream-$round.json" >"$dir/upstream.txt"

  printf 'FEATURE_USER_INITIALIZE: true\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n' >"$dir/config.yaml"
  target/release/quayside serve --listen 127.0.0.1:$qport --config "$dir/config.yaml" \
    --data-dir "$dir/quayside" --log-format json 2>"$dir/quayside.log" &
  qpid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$qport/health/instance" >/dev/null && break; sleep 0.1; done
  token=$(curl -sf -X POST "http://127.0.0.1:$qport/api/v1/user/initialize" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"bench-password1","email":"bench@example.com","access_token":true}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  api() { curl -sf -X POST "http://127.0.0.1:$qport/api/v1/$1" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$2" >/dev/null; }
  api organization/ '{"name":"proxyorg","email":"proxyorg@example.com"}'
  api organization/proxyorg/proxycache "{\"upstream_registry\":\"127.0.0.1:$uport/library\",\"insecure\":true}"
  for phase in cold cached; do
    "$bench" --url "http://127.0.0.1:$qport" --user bench --password bench-password1 --namespace proxyorg \
      --read-only --pid $qpid --label "proxy-$phase" "${light[@]}" --out "$out/proxy-$phase-$round.json" \
      >"$dir/proxy-$phase.txt"
  done
  "$bench" --url "http://127.0.0.1:$qport" --user bench --password bench-password1 --namespace bench \
    --pid $qpid --label normal "${light[@]}" --out "$out/normal-$round.json" >"$dir/normal.txt"
  kill $qpid $upid; wait $qpid $upid 2>/dev/null || true
done
uptime
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
med = {}
for label in ["upstream", "proxy-cold", "proxy-cached", "normal"]:
    speeds = []
    for r in range(1, rounds + 1):
        d = json.load(open(f"{out}/{label}-{r}.json"))
        speeds.append(round(d["runs"][0]["phases"]["pull_A"]["mib_s"], 1))
    med[label] = statistics.median(speeds)
    print(f"{label}: pull A MiB/s per round {speeds}, median {med[label]}")
print(f"cached / normal = {med['proxy-cached'] / med['normal']:.2f} (target >= 0.90)")
print(f"cold / upstream = {med['proxy-cold'] / med['upstream']:.2f} (target >= 0.80)")
PY
