#!/usr/bin/env bash
# The project's test command: installs the real test peers (DCMTK, tshark, Orthanc,
# pynetdicom + pydicom) if they are missing, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-peers.sh
export DICOMTAP_VENV="$PWD/.venv"
cargo test --workspace --all-targets "$@"
