#!/usr/bin/env bash
# The main job (`make demo`): the ame-demo logistic regression from AME's docs,
# end to end on the embedded store: validate the ame.yml, train -> validate ->
# promote -> deploy, ask the deployment for predictions, score a small file with
# `ame predict`, stop the deployment, and check the
# traffic it logged for drift (`ame monitor`).
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

# AME's file has no monitoring; the copy gets a section: the server logs every
# request, and the drift check compares them with a reference dataset.
python - <<'PY'
import random
from pathlib import Path
yml = Path("ame.yml")
text = yml.read_text().replace(
    "    type: mlflow\n",
    "    type: mlflow\n"
    "    monitoring:\n"
    "      log: {sampleRate: 1.0}\n"
    "      reference: logreg_reference\n"
    "      thresholds: {psi: 0.25, pValue: 0.01}\n",
    1,
)
yml.write_text(text + "dataSets:\n  - name: logreg_reference\n    path: reference.csv\n")
rng = random.Random(0)
Path("reference.csv").write_text("0\n" + "".join(f"{rng.uniform(-2, 2):.3f}\n" for _ in range(400)))
PY

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
import random
body = {"inputs": [[-2.0], [0.5], [2.0]]}
response = httpx.post(f"{url}/invocations", json=body, timeout=30)
response.raise_for_status()
print(f"inputs {body['inputs']} -> {json.dumps(response.json())}")
rng = random.Random(1)
with httpx.Client(timeout=30) as client:
    for _ in range(100):  # traffic like the reference, for the drift check below
        rows = [[round(rng.uniform(-2, 2), 3)] for _ in range(4)]
        client.post(f"{url}/invocations", json={"inputs": rows}).raise_for_status()
print("sent 100 more requests")
PY

echo "== ame predict logreg@champion -i to_score.csv -o scored.csv   (batch scoring)"
printf 'x\n-2.0\n-0.5\n0.5\n2.0\n' > to_score.csv
ame predict logreg@champion -i to_score.csv -o scored.csv
cat scored.csv

echo "== ame deployment stop logreg   (the server closes its payload log files)"
ame deployment stop logreg

echo "== ame monitor logreg --html drift.html   (0: within thresholds, 1: drift)"
ame monitor logreg --since 1h --html "$work/drift.html"
echo "demo finished"
