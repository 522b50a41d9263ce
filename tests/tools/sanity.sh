#!/usr/bin/env bash
# `make sanity`: ansible-test sanity, no ignore file, offline-safe.
# ansible-test must run from a path ending in ansible_collections/<namespace>/<name> (a symlink does not do:
# it resolves the working directory), so the work tree is copied first — outside this repository, or
# ansible-test would list files through this repository's git and find the copy ignored.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
build=$(mktemp -d "${TMPDIR:-/tmp}/kubediag-egress-sanity.XXXXXX")
trap 'rm -rf "$build"' EXIT
dest=$build/ansible_collections/kubediag/egress
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --from0 --files-from=- --ignore-missing-args "$repo/" "$dest/"

# An isolated HOME holding the offline get-pip stand-in, under the name ansible-test looks for.
export HOME=$build/home
pip_version=$(grep -oP "pip='\K[0-9.]+" "$repo"/.venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
cp tests/tools/get_pip_offline.py "$cache/get_pip_${pip_version//./_}.py"

cd "$dest"
"$repo/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
