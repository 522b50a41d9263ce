#!/usr/bin/env bash
# make mutation: mutation testing (mutmut) of the modules users act on. For each module, every mutant is run against
# the unit tests that reach it; prints the share caught per module and every surviving mutant, and fails when a
# module is below MUTATION_THRESHOLD percent (default 80). MUTATION_MODULES narrows the list (paths under
# plugins/module_utils/). mutmut imports the code under its own module path, so each run works on a copy of the
# checkout laid out as ansible_collections/kubediag/egress (the name the tests import), under tests/output/mutation/
# (kept after the run: `cd tests/output/mutation/<module> && ../../../../.venv/bin/mutmut show <mutant>` shows a change).
# An equivalent mutant (one no test can tell apart) is marked in the code with a `# pragma: no mutate` comment saying why.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
modules=${MUTATION_MODULES:-verdict/rules.py probe/facts.py probe/script.py report/render.py cloud/aws_path.py}
work=$repo/tests/output/mutation
rm -rf "$work"
mkdir -p "$work"
for module in $modules; do
  [[ -f plugins/module_utils/$module ]] || { echo "mutation: plugins/module_utils/$module does not exist" >&2; exit 2; }
  run=$work/${module//\//_}
  tree=ansible_collections/kubediag/egress
  mkdir -p "$run/$tree"
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -c | tar -x -C "$run/$tree"
  cat > "$run/setup.cfg" <<CFG
[mutmut]
source_paths=$tree/plugins/module_utils/$module
pytest_add_cli_args_test_selection=$tree/tests/unit
also_copy=
    ansible_collections
CFG
  echo "mutation: $module ..."
  start=$SECONDS
  if ! (cd "$run" && "$repo/.venv/bin/mutmut" run >"$run/run.log" 2>&1); then
    tr '\r' '\n' <"$run/run.log" | grep -v '^\s*[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]' | tail -20 >&2
    echo "mutation: mutmut failed on $module" >&2
    exit 2
  fi
  (cd "$run" && "$repo/.venv/bin/mutmut" results --all true) >"$work/${module//\//_}.results"
  echo "mutation: $module done in $((SECONDS - start)) s"
done
pairs=()
for module in $modules; do
  pairs+=("$module=$work/${module//\//_}.results")
done
.venv/bin/python tests/tools/mutation_report.py --threshold "${MUTATION_THRESHOLD:-80}" "${pairs[@]}"
