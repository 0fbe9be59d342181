#!/bin/bash
# Cold and warm starts of VBKGC+twins training (issue 19): `speed.py` on 20,480 FB15k-237 triples, 3 epochs, first
# with an empty Inductor cache (cold), then a second process with the cache of the first (warm). With a directory
# BEFORE (an export of an earlier commit, e.g. `git archive c3f0996 | tar -x -C /tmp/before`), its code and this
# checkout's alternate, run by run, so that both see the same drift of the machine's speed.
#
#   bash benchmarks/cold_start.sh OUTPUT_DIR [BEFORE] [RUNS]
#
# Writes OUTPUT_DIR/{before,after}-{cold,warm}-RUN.json (speed.py's reports) and prints one line per process:
# the first epoch, a steady epoch and their difference, in seconds.
set -euo pipefail
output=${1:?usage: cold_start.sh OUTPUT_DIR [BEFORE] [RUNS]}
before=${2:-}
runs=${3:-2}
cd "$(dirname "$0")/.."
mkdir -p "$output"
versions=after
[ -n "$before" ] && versions="before after"
for run in $(seq 1 "$runs"); do
  for version in $versions; do
    pythonpath=
    [ "$version" = before ] && pythonpath=$before
    cache=$(mktemp -d "${TMPDIR:-/tmp}/torchinductor_cold_XXXXXX")
    for start in cold warm; do
      report=$output/$version-$start-$run.json
      TORCHINDUCTOR_CACHE_DIR=$cache PYTHONPATH=$pythonpath python benchmarks/speed.py --data ../shared/data/fb15k237 \
        --num-train 20480 --epochs 3 --num-test 100 --threads 2 --output "$report" > "${report%.json}.log" 2>&1
      python -c "import json, sys; r = json.load(open(sys.argv[1]))['vbkgc_twins']; print(sys.argv[1], 'first %.1f s, steady %.2f s, first minus steady %.1f s' % (r['first_epoch_seconds'], r['seconds_per_epoch'], r['first_epoch_overhead_seconds']))" "$report"
    done
    rm -rf "$cache"
  done
done
