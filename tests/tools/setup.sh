#!/usr/bin/env bash
# `make setup`: everything the collection, its tests and its lab need, on a fresh Debian machine.
# Idempotent and quick when already done: apt only for missing packages, pip only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_packages=$(grep -v '^#' tests/lab/apt-packages.txt | tr '\n' ' ')
missing=()
for pkg in $apt_packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=""
for candidate in python3.11 python3; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
[ -n "$python" ] || { echo "setup: Python 3.11 or newer is required" >&2; exit 2; }

stamp=.venv/.requirements.sha256
want=$(sha256sum tests/requirements.lock | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (tests/requirements.lock)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r tests/requirements.lock
  echo "$want" > "$stamp"
fi

# ansible.cfg points collections_path here: the checkout itself is kubediag.egress.
mkdir -p .collections/ansible_collections/kubediag
ln -sfn ../../.. .collections/ansible_collections/kubediag/egress
