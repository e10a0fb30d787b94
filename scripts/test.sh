#!/usr/bin/env bash
# The whole test suite, with its own set-up: run it on a fresh machine that
# has Rust installed. CI (.ci/run) calls exactly this.
#
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace; the test profile is optimised, see Cargo.toml)"
cargo test --workspace "$@"
