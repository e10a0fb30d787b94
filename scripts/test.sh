#!/usr/bin/env bash
# The whole test suite, with its own set-up: run it on a fresh machine that
# has Rust installed. CI (.ci/run) calls exactly this.
#
# Set-up (skipped when already done, so a second run costs under a second):
# - tshark (Debian package): the independent SoupBinTCP/OUCH decoder of
#   tests/tshark_conformance.rs; needs root for apt-get;
# - .venv-test/: a Python virtual environment with PyPI nasdaq-protocols, a
#   real SoupBinTCP client (tests/python/ouch_client.py), and
#   prometheus-client, whose OpenMetrics parser reads our /metrics
#   (tests/admin_e2e.rs).
# Both are exported to the tests as CARBONX_TSHARK and CARBONX_PYTHON; a test
# that needs one and does not find it fails, telling you to run this script.
#
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

NASDAQ_PROTOCOLS_VERSION=1.3.0
PROMETHEUS_CLIENT_VERSION=0.21.1
VENV=.venv-test

if ! command -v tshark >/dev/null 2>&1; then
    echo "== installing tshark (Debian package)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "tshark is missing and this is not root: install it (apt-get install tshark) and rerun" >&2
        exit 1
    fi
    # wireshark-common asks whether non-root users may capture; answer no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tshark >/dev/null
fi

venv_ok() {
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; import nasdaq_protocols.soup
import prometheus_client.openmetrics.parser
sys.exit(m.version('nasdaq-protocols') != '$NASDAQ_PROTOCOLS_VERSION'
         or m.version('prometheus-client') != '$PROMETHEUS_CLIENT_VERSION')" 2>/dev/null
}
if ! venv_ok; then
    echo "== creating $VENV with nasdaq-protocols==$NASDAQ_PROTOCOLS_VERSION"
    PYTHON=$(command -v python3 || true)
    if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        echo "== installing python3-venv (Debian package)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
        PYTHON=$(command -v python3)
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nasdaq-protocols==$NASDAQ_PROTOCOLS_VERSION" "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
    venv_ok
fi

CARBONX_TSHARK=$(command -v tshark)
CARBONX_PYTHON=$PWD/$VENV/bin/python
export CARBONX_TSHARK CARBONX_PYTHON
echo "== tools: $("$CARBONX_TSHARK" --version 2>/dev/null | head -n1);" \
    "nasdaq-protocols $NASDAQ_PROTOCOLS_VERSION, prometheus-client $PROMETHEUS_CLIENT_VERSION in $VENV"

echo "== cargo test (workspace; the test profile is optimised, see Cargo.toml)"
cargo test --workspace "$@"
