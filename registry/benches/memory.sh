#!/usr/bin/env bash
# Memory of a release build under load (issue 21), from /proc/<pid>/status VmRSS sampled every
# 0.2 s. Run by hand:
#
#   registry/benches/memory.sh            # results printed; samples in target/bench/memory-*.tsv
#
# 1. registry-bench scenario A, one run: push, pull, 8 parallel pulls (skopeo), blob GETs, wrk.
#    Reported: the peak RSS while it ran (target: at most 60 MiB).
# 2. The minute after the load: RSS every second; reported: when it first fell under 20 MiB.
# 3. One 2 GiB layer pushed with curl (POST, one streamed PATCH, PUT ?digest=) under a bearer
#    token: the peak RSS during the upload (target: at most 100 MiB).
# Needs: a release build (made here), skopeo, wrk, curl, sha256sum and registry-bench
# (REGISTRY_BENCH, default ../shared/bench/registry-bench). Note `uptime` with the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=${REGISTRY_BENCH:-../shared/bench/registry-bench}
out=target/bench
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=${PORT:-5111}
url=http://127.0.0.1:$port

[ -n "${NO_BUILD:-}" ] || cargo build --release -p quayside
target/release/quayside serve --listen 127.0.0.1:$port --data-dir "$work/data" --log-format json \
  2>"$work/quayside.log" &
pid=$!
for _ in $(seq 1 50); do curl -sf "$url/health/instance" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "$url/api/v1/user/initialize" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"bench-password1","email":"bench@example.com"}' >/dev/null

rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }   # KiB
# Samples "seconds-since-start rss-kib" into $1 until the file $1.stop exists.
sample() {
  local t0; t0=$(date +%s.%N)
  : >"$1"
  while [ ! -e "$1.stop" ]; do
    echo "$(echo "$(date +%s.%N) - $t0" | bc) $(rss)" >>"$1"
    sleep 0.2
  done
}
peak() { sort -k2 -n "$1" | tail -1 | awk '{printf "%.1f", $2 / 1024}'; }

echo "idle RSS: $(echo "scale=1; $(rss) / 1024" | bc) MiB"

# 1. Pull load.
sample "$out/memory-load.tsv" & s=$!
"$bench" --url "$url" --user bench --password bench-password1 --namespace bench --pid $pid \
  --label quayside --runs 1 --scenarios A --out "$out/memory-bench.json" >"$work/bench.out" 2>&1
touch "$out/memory-load.tsv.stop"; wait $s; rm -f "$out/memory-load.tsv.stop"
echo "peak RSS during scenario A (push, pulls, 8 parallel pulls, blob GETs, wrk): $(peak "$out/memory-load.tsv") MiB"

# 2. After the load.
: >"$out/memory-after.tsv"
under=""
for i in $(seq 1 60); do
  sleep 1
  r=$(rss); echo "$i $r" >>"$out/memory-after.tsv"
  if [ -z "$under" ] && [ "$r" -lt $((20 * 1024)) ]; then under=$i; fi
done
echo "RSS right after the load: $(awk 'NR==1 {printf "%.1f", $2/1024}' "$out/memory-after.tsv") MiB," \
  "after 60 s: $(awk 'END {printf "%.1f", $2/1024}' "$out/memory-after.tsv") MiB," \
  "first under 20 MiB after: ${under:-never} s"

# 3. A 2 GiB layer (zeros: the server does not compress, so bytes are bytes).
size=$((2 * 1024 * 1024 * 1024))
digest="sha256:$(head -c $size /dev/zero | sha256sum | cut -d' ' -f1)"
challenge=$(curl -s -o /dev/null -D - "$url/v2/" | tr -d '\r' | grep -i '^www-authenticate:')
realm=$(echo "$challenge" | sed -E 's/.*realm="([^"]+)".*/\1/')
service=$(echo "$challenge" | sed -E 's/.*service="([^"]+)".*/\1/')
token=$(curl -sf -u bench:bench-password1 \
  "$realm?service=$service&scope=repository:bench/big:push,pull" | sed -E 's/.*"token": ?"([^"]+)".*/\1/')
location=$(curl -sf -X POST -D - -o /dev/null -H "Authorization: Bearer $token" \
  "$url/v2/bench/big/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location" {print $2}')
case "$location" in http*) ;; *) location="$url$location" ;; esac
sample "$out/memory-push.tsv" & s=$!
t0=$(date +%s.%N)
location=$(head -c $size /dev/zero | curl -sf -X PATCH -T - -D - -o /dev/null \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/octet-stream' "$location" |
  tr -d '\r' | awk -F': ' 'tolower($1)=="location" {print $2}')
case "$location" in http*) ;; *) location="$url$location" ;; esac
case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $token" \
  "$location${sep}digest=$digest")
t1=$(date +%s.%N)
touch "$out/memory-push.tsv.stop"; wait $s; rm -f "$out/memory-push.tsv.stop"
echo "2 GiB layer: PUT answered $code in $(echo "$t1 - $t0" | bc) s; peak RSS $(peak "$out/memory-push.tsv") MiB"
echo "VmHWM over everything: $(awk '/^VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status) MiB"
uptime
kill $pid; wait $pid 2>/dev/null || true
