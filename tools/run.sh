#!/usr/bin/env bash
# Quick start, command 1: set up what is missing, build the app and the server in
# release mode, and run emberlens on its embedded default (127.0.0.1:9190, data in
# ./data, scraping its own /metrics). Extra arguments go to `emberlens serve`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

"$root/tools/setup.sh" --no-browser
echo "run: building the app (trunk, release)"
(cd "$root/app" && trunk build --release --offline)
echo "run: building the server (release)"
cargo build --release --manifest-path "$root/Cargo.toml" -p emberlens-server
cd "$root"
echo "run: starting emberlens; open the URL it prints below (Ctrl-C stops it)"
exec "$root/target/release/emberlens" serve --web.ui-path "$root/app/dist" "$@"
