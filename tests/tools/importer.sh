#!/usr/bin/env bash
# `make importer`: build the collection tarball as a user would publish it and run galaxy-importer on it
# (ansible-doc on every plugin, ansible-lint on the tarball). Any error or warning fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

.venv/bin/ansible-galaxy collection build --force --output-path "$out" . >/dev/null
tarball=$(ls "$out"/kubediag-egress-*.tar.gz)

cat > "$out/importer.cfg" <<CFG
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
RUN_FLAKE8 = False
CHECK_REQUIRED_TAGS = False
ANSIBLE_LOCAL_TMP = $out/ansible-tmp
CFG
export GALAXY_IMPORTER_CONFIG=$out/importer.cfg
export PATH=$repo/.venv/bin:$PATH
(cd "$out" && python -m galaxy_importer.main "$tarball") > "$out/importer.log" 2>&1 || {
  cat "$out/importer.log"; echo "importer: galaxy-importer failed on $(basename "$tarball")" >&2; exit 1; }
if grep -E '^(WARNING|ERROR)' "$out/importer.log"; then
  echo "importer: galaxy-importer reported the warnings above" >&2
  exit 1
fi
echo "importer: $(basename "$tarball") imports cleanly"
