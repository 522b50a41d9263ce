#!/usr/bin/env bash
# `make demo`: a broken lab up, the field guide's own checks run in the broken pod, the lab down.
# (The diagnose playbook replaces the hand-run checks once it exists.)
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${DEMO_SCENARIO:-dns.upstream_forwarding}
lab=$(mktemp -d /tmp/kubediag-demo.XXXXXX)
kdlab() { PYTHONPATH=tests/lab .venv/bin/python -m kdlab "$@"; }
trap 'kdlab down --lab "$lab" >/dev/null; rm -rf "$lab"' EXIT

echo "== bringing up the lab scenario '$scenario' in $lab"
kdlab up --scenario "$scenario" --lab "$lab"
read -r pod target public_dns < <(.venv/bin/python - "$lab/lab.json" <<'PY'
import json, sys
from urllib.parse import urlsplit
lab = json.load(open(sys.argv[1]))
print(lab["subject"]["pod"], lab["subject"]["targets"][0], lab["resolvers"]["public"])
PY
)
host=$(.venv/bin/python -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).hostname)' "$target")
echo "   subject: pod $pod cannot reach $target"

check() {
  echo
  echo "\$ kubectl exec -n ${pod%%/*} ${pod#*/} --$(printf ' %q' "$@")"
  kdlab exec --lab "$lab" --pod "$pod" -- "$@" 2>&1 | sed 's/^/  /' || true
}
check cat /etc/resolv.conf
check ping -c 2 -W 2 "$public_dns"
check nslookup -timeout=3 "$host"
check nslookup -timeout=3 "$host" "$public_dns"
check curl -sS --max-time 5 -o /dev/null -w '%{http_code}\n' "$target"
cat <<TXT

== what the field guide concludes from this
   ping to an IP works, the host name does not resolve             -> DNS
   the public resolver ($public_dns) answers, the cluster DNS does not -> CoreDNS forwarding (dns.upstream_forwarding)
   The diagnose playbook (kubediag.egress.diagnose_egress) automates these checks and the conclusion.
TXT
