#!/usr/bin/env bash
# Starts the three-node example cluster on loopback (docs/OPERATIONS.md,
# "Running a cluster"): node k's data in ./cluster-data/node<k>, its log in
# ./cluster-data/node<k>.log, its pid in ./cluster-data/node<k>.pid.
# Stop them with examples/cluster/stop.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cargo build --release --quiet --manifest-path "$here/../../Cargo.toml"
bin="$here/../../target/release/carbonx"
mkdir -p cluster-data
for k in 1 2 3; do
    "$bin" serve --config "$here/node$k.toml" --data-dir "cluster-data/node$k" \
        >"cluster-data/node$k.log" 2>&1 &
    echo $! >"cluster-data/node$k.pid"
done
sleep 2
"$bin" admin --url http://127.0.0.1:7010 cluster || true
