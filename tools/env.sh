# Sourced by the other scripts: the tool paths setup.sh installs into.
# shellcheck shell=bash
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# trunk must never try to download tools: this machine has no internet.
export TRUNK_OFFLINE=true
