#!/usr/bin/env bash
# Installs what Emberlens needs to build and test, and nothing that is already there.
#
# Idempotent: every step checks the installed version first, so a warm run takes
# about a second. Versions are pinned here and in Cargo.toml / package-lock.json:
#   - rustup target wasm32-unknown-unknown
#   - wasm-bindgen-cli   = the `wasm-bindgen` version pinned in the workspace Cargo.toml
#   - trunk              = 0.21.14 (0.22 needs a newer rustc; `--locked` keeps its deps buildable)
#   - wasm-opt           = npm `binaryen` from tools/package-lock.json (Debian's 108 miscompiles)
#   - chromium + chromedriver from Debian (tests drive the system browser; nothing downloads one)
#   - prometheus from Debian (promtool and the reference Prometheus the tests compare against)
#   - npm packages for e2e/ from e2e/package-lock.json
#
# Usage: tools/setup.sh [--no-browser]   (--no-browser skips what only tests need, for `run.sh`)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_browser=1
for arg in "$@"; do
  case "$arg" in
    --no-browser) want_browser=0 ;;
    *) echo "setup: unknown argument $arg" >&2; exit 2 ;;
  esac
done

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
if [ -z "$WASM_BINDGEN_VERSION" ]; then
  echo "setup: cannot find the pinned wasm-bindgen version in Cargo.toml" >&2
  exit 1
fi

export PATH="$root/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
log() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root for: $*" >&2; return 1
  fi
}

# --- Rust target -----------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# --- Debian packages (Chromium for the browser tests) ----------------------
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  # The packages' own output goes to a log; only a failure shows it.
  local log; log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}
if [ "$want_browser" = 1 ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Debian chromium and chromium-driver"
    apt_install chromium chromium-driver
  fi
  # The oracle script (../shared/fixtures/oracle/oracle.sh) runs curl.
  if ! command -v curl >/dev/null; then
    log "installing Debian curl"
    apt_install curl
  fi
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    log "installing Debian prometheus (promtool and the reference server)"
    apt_install prometheus
  fi
  if ! command -v go >/dev/null; then
    log "installing Debian golang-go (go tool pprof, the reference for profiles)"
    apt_install golang-go
  fi
fi

# --- cargo-installed tools -------------------------------------------------
have_version() { # have_version CMD VERSION: does `CMD --version` print VERSION?
  command -v "$1" >/dev/null && "$1" --version 2>/dev/null | grep -qw "$2"
}
if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: the registry mirror lacks a version its lockfile names.
  cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if ! have_version trunk "$TRUNK_VERSION"; then
  log "installing trunk $TRUNK_VERSION (about ten minutes, once)"
  cargo install --quiet trunk --version "$TRUNK_VERSION" --locked --force
fi

# --- npm packages ----------------------------------------------------------
# Installs from the committed lockfile when node_modules is missing or older than it.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.emberlens-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    log "npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
npm_ci "$root/tools"
if [ "$want_browser" = 1 ]; then npm_ci "$root/e2e"; fi

log "ready (wasm-bindgen $WASM_BINDGEN_VERSION, trunk $TRUNK_VERSION, $("$root/tools/node_modules/.bin/wasm-opt" --version))"
