#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while (default 60 s each), then minimises
# each corpus so the committed one stays small. Not part of tools/test.sh.
#
# cargo-fuzz needs nightly compiler flags; this machine has only stable Rust,
# so the run sets RUSTC_BOOTSTRAP=1 (the stable compiler accepts them then).
# Usage: tools/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
secs="${1:-60}"; shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (once)"
  cargo install --quiet cargo-fuzz --locked
fi
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${secs}s"
  mkdir -p "corpus/$t"
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 2>&1 | grep -E "^(#[0-9]+\s+DONE|==|SUMMARY|Done)|panicked|ERROR" || true
  cargo fuzz cmin "$t" "corpus/$t" >/dev/null 2>&1 || true
  echo "fuzz: $t corpus now $(ls "corpus/$t" | wc -l) files"
done
