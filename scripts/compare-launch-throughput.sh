#!/usr/bin/env bash
# Side-by-side training throughput of `bnn launch --local N` for two checkouts of bnn-cluster
# (e.g. before and after a change): runs them alternately, PAIRS times each, on the same config,
# and prints each run's mean samples/s over its epochs after the first (the first warms caches
# and the data set) and the ratio of the medians.
#
#   scripts/compare-launch-throughput.sh <checkout A> <checkout B> [config] [workers] [epochs] [pairs]
#
# Each checkout must be built (npm ci / npm run build); the runs use a scratch store and
# checkpoint directory under a temp dir, so neither checkout's ./runs is touched.
set -euo pipefail
A=${1:?checkout A}
B=${2:?checkout B}
CONFIG=$(realpath "${3:-examples/fmnist-mlp-binary.yaml}")
WORKERS=${4:-2}
EPOCHS=${5:-3}
PAIRS=${6:-2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
run() {
  local dir=$1 tag=$2 i=$3
  (cd "$dir" && node bin/bnn.js launch --local "$WORKERS" "$CONFIG" --epochs "$EPOCHS" --json \
    --store "$TMP/$tag-$i.db" --checkpoint-dir "$TMP/ckpt-$tag-$i" 2>/dev/null) |
    tail -1 | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const r = JSON.parse(s);
        const later = r.epochs.slice(1).map((e) => e.samplesPerS);
        const mean = later.reduce((a, b) => a + b, 0) / later.length;
        console.log(`${process.argv[1]} ${r.status} ${mean.toFixed(1)}`);
      });' "$tag"
}
for i in $(seq 1 "$PAIRS"); do
  run "$A" A "$i"
  run "$B" B "$i"
done | tee "$TMP/results"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
  const med = (xs) => { xs.sort((a, b) => a - b); const m = xs.length >> 1; return xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2; };
  const of = (t) => lines.filter((l) => l[0] === t).map((l) => Number(l[2]));
  const a = med(of("A")), b = med(of("B"));
  console.log(`median samples/s: A ${a.toFixed(1)}, B ${b.toFixed(1)}; B/A = ${(b / a).toFixed(4)} (${((b / a - 1) * 100).toFixed(2)}%)`);
' "$TMP/results"
