#!/usr/bin/env bash
# The end-to-end benchmarks in one command: installs the peers that are missing (DCMTK,
# tshark/dumpcap, socat, HAProxy, GNU time, valgrind; perf with --profile) from Debian's packages,
# builds dicomtap and the harness in release mode, raises the open-files limit, runs
# benches/e2e (see docs/performance.md), writes benches/results/latest.json and prints
# the table. Arguments go to the harness: --quick, --reps N, --profile,
# --sections store,echo,many,analyze, --help.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v storescu >/dev/null 2>&1 || need_apt+=(dcmtk)
command -v dumpcap >/dev/null 2>&1 || need_apt+=(tshark)
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
if [[ " $* " == *" --profile "* ]] && ! command -v perf >/dev/null 2>&1; then
  need_apt+=(linux-perf)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  # The haproxy package would start a system service; the harness runs its own on
  # 127.0.0.1. A policy-rc.d that refuses service starts keeps this install from starting
  # it; it is ours only when none was there, and only then removed. Nothing already
  # running on the machine is stopped.
  policy=/usr/sbin/policy-rc.d
  ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [ -n "$ours" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi

# 1,000 associations are 2,000+ descriptors in the proxy (it inherits this limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "bench: open-files limit $(ulimit -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

cargo bench --bench e2e -- "$@"
