#!/usr/bin/env bash
# The WN9 rows of docs/results.md, section "WN9: the vote behind the mirror gate" (issue 18): the defaults rows trained
# through pipeline() with their weights saved, the four ways of adding the neighbours' vote on the validation split,
# and the test split with the preset's vote and without it, whole and in its two parts (test triples whose reverse
# pair is linked in training, and the others). One seed per call; about 15 minutes of the 2-core CPU per seed.
#
#     bash benchmarks/wn9_mirror_vote.sh SEED
#
# The defaults rows train with the `wn9` preset as it is: since the thirteenth session its text terms weigh 0.05 (the
# section "WN9: the text terms weighted 0.05"), so they no longer give the twelfth session's numbers (0.03).
#
# Environment: DATA (default ../shared/data/wn9), ROWS (default: the five defaults rows), RESULTS (default results).
set -eu

main() {
    SEED=${1:?SEED}
    DATA=${DATA:-../shared/data/wn9}
    ROWS=${ROWS:-vbkgc-defaults vbkgc-random-defaults vbkgc-ss-defaults vbkgc-normal-defaults vbkgc-nscaching-defaults}
    RESULTS=${RESULTS:-results}
    # shellcheck disable=SC2086  # ROWS is a list of labels
    python benchmarks/accuracy_matrix.py --matrix wn9 --dataset wn9 --data "$DATA" --max-epochs 100 --threads 1 \
        --workers 2 --seed "$SEED" --rows $ROWS --output "$RESULTS/wn9_defaults_w.jsonl" --save-weights "$RESULTS/wn9w"
    for ROW in $ROWS; do
        case $ROW in vbkgc-defaults | vbkgc-random-defaults)
            OMP_NUM_THREADS=1 python benchmarks/vote_combinations.py --dataset wn9 --data "$DATA" \
                --weights "$RESULTS/wn9w/$ROW-seed$SEED.pt" --model-kwargs "$(row_kwargs "$ROW" '{}')" \
                --split validation --label "$ROW" --seed "$SEED" --epochs 100 \
                --output "$RESULTS/vote_combinations.jsonl"
            for SUBSET in reverse-known reverse-unknown; do
                evaluate "$ROW" mirror-vote '{}' --subset "$SUBSET"
                evaluate "$ROW" no-vote '{"neighbour_weight": 0}' --subset "$SUBSET"
            done
            ;;
        esac
        evaluate "$ROW" mirror-vote '{}'
        evaluate "$ROW" no-vote '{"neighbour_weight": 0}'
    done
}

# the row's model keyword arguments in MATRICES["wn9"], updated with a JSON object
row_kwargs() {
    python - "$1" "$2" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from accuracy_matrix import MATRICES
print(json.dumps({**MATRICES["wn9"][sys.argv[1]][2].get("model_kwargs", {}), **json.loads(sys.argv[2])}))
PY
}

# evaluate ROW's saved weights with the preset as it is now: ROW SUFFIX EXTRA_JSON [--subset PART]
evaluate() {
    local seconds
    seconds=$(python -c "import json, sys; print([r for r in map(json.loads, open(sys.argv[1])) if r['label'] == \
sys.argv[2] and r['seed'] == int(sys.argv[3])][-1]['train_seconds'])" "$RESULTS/wn9_defaults_w.jsonl" "$1" "$SEED")
    OMP_NUM_THREADS=1 python benchmarks/evaluate_weights.py --dataset wn9 --data "$DATA" \
        --weights "$RESULTS/wn9w/$1-seed$SEED.pt" --seed "$SEED" --epochs 100 --train-seconds "$seconds" \
        --model-kwargs "$(row_kwargs "$1" "$3")" --label "$1-$2" "${@:4}" --output "$RESULTS/wn9_final_eval.jsonl"
}

main "$@"
