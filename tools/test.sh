#!/usr/bin/env bash
# Quick start, command 2: set up what is missing and run every test:
#   formatting and clippy (native, and wasm32 for the browser crates; the app
#   only targets wasm32, its logic lives in crates tested natively),
#   native unit and integration tests, Wasm tests in headless Chromium
#   (inside a real dedicated worker), and the end-to-end tests (a real
#   emberlens and the release app in Debian's Chromium, driven by Playwright).
# Every suite runs even when an earlier one fails; the exit status is non-zero
# if any failed, and the last lines say which.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"

"$root/tools/setup.sh" || { echo "test: setup failed" >&2; exit 1; }

# Chromium, chromedriver and the tests leave scratch directories in $TMPDIR
# (a killed chromium never removes its ~65 MB profile). Give this run its own
# and remove it at the end, so repeated runs don't fill the disk.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/emberlens-test.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"

failed=()
started=$(date +%s)
step() { # step NAME COMMAND...: runs one suite, timing it and recording failure
  local name="$1"; shift
  local t0; t0=$(date +%s)
  echo
  echo "=== $name"
  if "$@"; then
    echo "=== $name: ok ($(( $(date +%s) - t0 )) s)"
  else
    echo "=== $name: FAILED ($(( $(date +%s) - t0 )) s)"
    failed+=("$name")
  fi
}

wasm_sizes() {
  echo "release Wasm sizes (raw / gzip -9):"
  for f in app/dist/*.wasm; do
    printf '  %-48s %8d / %8d bytes\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
  done
}

step "rustfmt" cargo fmt --all --check
step "clippy (native)" cargo clippy --workspace --exclude emberlens-app --all-targets --quiet -- -D warnings
step "clippy (wasm32: app, worker, flame, remote, pprof)" cargo clippy --target wasm32-unknown-unknown -p emberlens-app -p emberlens-worker -p emberlens-flame -p emberlens-remote -p emberlens-pprof --all-targets --quiet -- -D warnings
step "native tests" cargo test --workspace --exclude emberlens-app
step "wasm tests (headless Chromium, dedicated worker)" env \
  CHROMEDRIVER=/usr/bin/chromedriver \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  WASM_BINDGEN_TEST_TIMEOUT=60 \
  cargo test --target wasm32-unknown-unknown -p emberlens-worker --tests
step "app build (trunk, release)" bash -c 'cd app && trunk build --release --offline'
wasm_sizes
step "server build" cargo build -p emberlens-server
step "end-to-end tests (Playwright, Debian Chromium)" env \
  EMBERLENS_BIN="$root/target/debug/emberlens" EMBERLENS_UI="$root/app/dist" \
  npm --prefix e2e test

echo
echo "test: finished in $(( $(date +%s) - started )) s (after setup)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: FAILED: ${failed[*]}"
  exit 1
fi
echo "test: all suites passed"
