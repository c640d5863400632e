#!/usr/bin/env bash
# Runs every cargo-fuzz target of registry/fuzz for N minutes each (default 10): the manifest and
# index parser, digests, repository names, Range and Content-Range, the /v2 route parser, token
# scopes, the Quay config loader, the /api/v1 body checks and the usage-logs date range. Not run
# in CI.
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). The corpus grows in registry/fuzz/corpus/<target>/; a crash is
# saved in registry/fuzz/artifacts/<target>/ and the script stops with its path. Fix it, then
# keep the input as a regression case in REGRESSIONS of registry/src/api/fuzzing.rs, which the
# normal suite runs.
#
# Usage: scripts/fuzz.sh [minutes-per-target] [target...]
set -euo pipefail

minutes="${1:-10}"
shift || true
cd "$(dirname "$0")/../registry/fuzz"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
    echo "== fuzzing $target for $minutes minute(s)"
    mkdir -p "corpus/$target"
    # -a: debug assertions and overflow checks, so an arithmetic overflow is a crash.
    cargo +nightly fuzz run -a "$target" "corpus/$target" -- \
        -max_total_time="$((minutes * 60))" -max_len=65536 -timeout=10 -print_final_stats=1
done
echo "== no crash in ${#targets[@]} target(s)"
