#!/usr/bin/env bash
# Three rounds of query -> label -> import on images made from the embedded digits, then a last query
# that only reports the held-out accuracy of a learner trained on everything labelled.
# Usage: examples/label_digits/run_example.sh [SEQGCN_COMMAND]   (default: seqgcn; e.g. "python -m seqgcn.cli")
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seqgcn="${1:-seqgcn}"
data="$here/data"
rm -rf "$data"
python "$here/make_images.py" --out "$data"
project=(--images "$data/images" --labels "$data/labels.csv" --test-labels "$data/test.csv" --image-size 16 --seed 0)
for round in 1 2 3; do
    echo "== round $round"
    $seqgcn query "${project[@]}" --budget 30 --out "$data/batch$round.csv"
    python "$here/annotate.py" "$data/batch$round.csv" --hidden "$data/hidden_labels.csv"
    $seqgcn import-labels "$data/batch$round.csv" --images "$data/images" --labels "$data/labels.csv"
done
echo "== after round 3"
$seqgcn query "${project[@]}" --budget 30 --out "$data/batch4.csv"
python - "$data/labels.queries.json" <<'PY'
import json, sys
print("round  labelled  held-out accuracy")
for r in json.load(open(sys.argv[1])):
    acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
    print(f"{r['round']:>5}  {r['n_labelled']:>8}  {acc:>17}   ({r['method']})")
PY
