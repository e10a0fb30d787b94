#!/usr/bin/env bash
# Stops the nodes examples/cluster/start.sh started (SIGTERM, then waits).
set -uo pipefail
for k in 1 2 3; do
    pidfile="cluster-data/node$k.pid"
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null
    rm -f "$pidfile"
done
wait 2>/dev/null
echo "stopped"
