#!/usr/bin/env bash
# Installs the real third-party peers the end-to-end tests talk to, idempotently, on a
# fresh Debian machine: DCMTK, tshark, Orthanc, Prometheus, NATS, VictoriaMetrics from
# Debian's packages, and pynetdicom + pydicom into a project-local virtual environment
# (.venv).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

need_apt=()
command -v storescu >/dev/null 2>&1 || need_apt+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || need_apt+=(dicom3tools)
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v Orthanc >/dev/null 2>&1 || need_apt+=(orthanc)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v qpdf >/dev/null 2>&1 || need_apt+=(qpdf)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
command -v victoria-metrics >/dev/null 2>&1 || need_apt+=(victoria-metrics)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  # Orthanc's, Prometheus's, NATS's and VictoriaMetrics' packages start system services
  # (4242/8042, 9090, 4222, 8428) when they are installed; the tests start their own
  # peers on free ports and need none of them. A
  # policy-rc.d that refuses service starts keeps this install from starting them; it is
  # ours only when none was there, and only then removed. Nothing already running on the
  # machine is stopped.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [ -n "${policy:-}" ] && [ "$(trap -p EXIT)" != "" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pynetdicom, pydicom' >/dev/null 2>&1; then
  "$venv/bin/pip" install -q --disable-pip-version-check 'pydicom>=2.4,<4' 'pynetdicom>=2.1,<4'
fi
echo "test peers ready: $(storescu --version 2>&1 | head -n1 | tr -s ' '); $(tshark --version | head -n1); Orthanc $(Orthanc --version 2>&1 | head -n1); $("$venv/bin/python" -c 'import pydicom, pynetdicom; print("pydicom", pydicom.__version__, "pynetdicom", pynetdicom.__version__)'); $(nats-server --version)"
