#!/usr/bin/env bash
# The main job (`make demo`): the ame-demo logistic regression from AME's docs,
# end to end on the embedded store: validate the ame.yml, train -> validate ->
# promote -> deploy, ask the deployment for a prediction, then stop it.
# It works on a fresh copy in a temporary directory, so it can be run again and again.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ame-demo.XXXXXX")"
cleanup() { (cd "$work/logreg" && ame deployment stop logreg >/dev/null 2>&1) || true; rm -rf "$work"; }
trap cleanup EXIT
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

# The project and the template project it refers to (found as a sibling directory).
cp -r "$here/logreg" "$here/shared-templates" "$work/"
cd "$work/logreg"

echo "== ame validate"
ame validate

echo "== ame train logreg   (train -> validate -> promote -> deploy)"
ame train logreg

echo "== ame status"
ame status

url="$(ame deployment list --json | python -c 'import json,sys; print(json.load(sys.stdin)[0]["url"])')"
echo "== POST $url/invocations"
python - "$url" <<'PY'
import json, sys, httpx
url = sys.argv[1]
body = {"inputs": [[-2.0], [0.5], [2.0]]}
response = httpx.post(f"{url}/invocations", json=body, timeout=30)
response.raise_for_status()
print(f"inputs {body['inputs']} -> {json.dumps(response.json())}")
PY

echo "== ame deployment stop logreg"
ame deployment stop logreg
echo "demo finished"
