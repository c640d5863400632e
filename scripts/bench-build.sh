#!/bin/sh
# Time from build request to pushed image for a trivial Dockerfile (FROM scratch + COPY), with
# the local executor: starts `quayside serve` (the binary in $QUAYSIDE, default
# target/debug/quayside) on a free loopback port with FEATURE_BUILD_SUPPORT, uploads the context,
# requests N builds one after the other and prints each request-to-complete time (the manager
# polls every 2 s, so a build waits up to 2 s to be claimed). Run by hand; figures go to
# docs/benchmarks.md with `uptime`.
set -eu
N=${N:-5}
BIN=${QUAYSIDE:-target/debug/quayside}
DIR=$(mktemp -d)
PORT=${PORT:-18555}
trap 'kill "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
cat > "$DIR/config.yaml" <<YAML
FEATURE_USER_INITIALIZE: true
FEATURE_BUILD_SUPPORT: true
PREFERRED_URL_SCHEME: http
YAML
"$BIN" serve --config "$DIR/config.yaml" --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" 2>"$DIR/server.log" &
PID=$!
URL="http://127.0.0.1:$PORT"
until curl -sf "$URL/health/instance" >/dev/null; do sleep 0.2; done
TOKEN=$(curl -sf -X POST "$URL/api/v1/user/initialize" -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"admin-password1","email":"a@example.com","access_token":true}' \
  | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
AUTH="Authorization: Bearer $TOKEN"
curl -sf -X POST "$URL/api/v1/organization/" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"name":"bench","email":"b@example.com"}' >/dev/null
curl -sf -X POST "$URL/api/v1/repository" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"namespace":"bench","repository":"app","visibility":"private","description":""}' >/dev/null
mkdir -p "$DIR/ctx"
printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > "$DIR/ctx/Dockerfile"
echo hello > "$DIR/ctx/hello.txt"
tar -czf "$DIR/ctx.tar.gz" -C "$DIR/ctx" .
i=0
while [ "$i" -lt "$N" ]; do
  i=$((i + 1))
  DROP=$(curl -sf -X POST "$URL/api/v1/filedrop/" -H "$AUTH" -H 'Content-Type: application/json' -d '{"mimeType":"application/gzip"}')
  PUT_URL=$(echo "$DROP" | sed -n 's/.*"url": *"\([^"]*\)".*/\1/p')
  FILE_ID=$(echo "$DROP" | sed -n 's/.*"file_id": *"\([^"]*\)".*/\1/p')
  curl -sf -X PUT --data-binary "@$DIR/ctx.tar.gz" "$PUT_URL" >/dev/null
  START=$(date +%s.%N)
  UUID=$(curl -sf -X POST "$URL/api/v1/repository/bench/app/build/" -H "$AUTH" -H 'Content-Type: application/json' \
    -d "{\"file_id\":\"$FILE_ID\",\"docker_tags\":[\"b$i\"]}" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
  while :; do
    PHASE=$(curl -sf "$URL/api/v1/repository/bench/app/build/$UUID" -H "$AUTH" | sed -n 's/.*"phase": *"\([^"]*\)".*/\1/p')
    case "$PHASE" in complete|error|expired|cancelled) break ;; esac
    sleep 0.05
  done
  END=$(date +%s.%N)
  echo "build $i: $PHASE in $(echo "$END - $START" | bc) s"
done
uptime
