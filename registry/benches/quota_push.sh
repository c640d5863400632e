#!/usr/bin/env bash
# Push time with quota accounting on vs off (issue 12: at most 5% on push C), with CNCF
# Distribution as the comparison, interleaved: each round starts a fresh Quayside with
# FEATURE_QUOTA_MANAGEMENT true, a fresh one with it false, and a fresh Distribution, and runs
# registry-bench's scenario C (50 tags x 1 MiB) once against each. Run by hand:
#
#   registry/benches/quota_push.sh [ROUNDS]     # default 3; JSON in target/bench/quota/
#
# Needs a release build (made here), docker-registry, skopeo, curl and registry-bench
# (REGISTRY_BENCH, default ../shared/bench/registry-bench). Prints each round and the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
bench=${REGISTRY_BENCH:-../shared/bench/registry-bench}
out=target/bench/quota
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release -p quayside
port=5111

quayside() { # label, FEATURE_QUOTA_MANAGEMENT value, round
  local dir="$work/$1-$3"
  mkdir -p "$dir"
  printf 'FEATURE_USER_INITIALIZE: true\nFEATURE_QUOTA_MANAGEMENT: %s\n' "$2" >"$dir/config.yaml"
  target/release/quayside serve --listen 127.0.0.1:$port --config "$dir/config.yaml" \
    --data-dir "$dir/data" --log-format json 2>"$dir/log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/instance" >/dev/null && break; sleep 0.1; done
  curl -sf -X POST "http://127.0.0.1:$port/api/v1/user/initialize" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"bench-password1","email":"bench@example.com"}' >/dev/null
  "$bench" --url "http://127.0.0.1:$port" --user bench --password bench-password1 --namespace bench \
    --pid $pid --label "$1" --runs 1 --scenarios C --wrk-duration 1 --out "$out/$1-$3.json" >"$dir/bench.txt"
  kill $pid; wait $pid 2>/dev/null || true
}

distribution() { # round
  local dir="$work/distribution-$1"
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" 2>"$dir/log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  "$bench" --url "http://127.0.0.1:$port" --namespace bench --pid $pid --label distribution \
    --runs 1 --scenarios C --wrk-duration 1 --out "$out/distribution-$1.json" >"$dir/bench.txt"
  kill $pid; wait $pid 2>/dev/null || true
}

for round in $(seq 1 "$rounds"); do
  quayside quota-on true "$round"
  quayside quota-off false "$round"
  distribution "$round"
done
uptime
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for label in ["quota-on", "quota-off", "distribution"]:
    secs, cpu = [], []
    for r in range(1, rounds + 1):
        phase = json.load(open(f"{out}/{label}-{r}.json"))["runs"][0]["phases"]["push_C"]
        secs.append(round(phase["seconds"], 3))
        cpu.append(round(phase.get("server_cpu_s", float("nan")), 3))
    m = statistics.median(secs)
    print(f"{label}: push C s per round {secs} (server cpu-s {cpu}); "
          f"median {m:.3f} s = {50 / m:.1f} img/s, server cpu median {statistics.median(cpu):.3f}")
PY
