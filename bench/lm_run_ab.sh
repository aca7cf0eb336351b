#!/usr/bin/env bash
# Two builds of apprentice on the same language-model run, taking turns: each round runs
# `apprentice run CONFIG --seeds 0` with the BEFORE binary and with the AFTER binary (which
# goes first alternates from round to round), both reading the same teacher cache, and records every student's training tokens/s (the run's own
# timing of its steps). Perplexities must come out identical: the script fails if any student's
# differs, since a change of speed is only comparable on the same arithmetic. It prints each
# student's median tokens/s and the rounds' ratios after / before, and with OUT=FILE writes
# them as a speed-ratio raw file (`apprentice report --markdown=speed-vs-pytorch FILE` renders
# it, the columns named after and before).
#
#   bench/lm_run_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#
# Build the BEFORE binary from the older commit in its own worktree and target folder, e.g.
#   git worktree add ../before OLD && (cd ../before && cargo build --release -p apprentice-cli)
# ROUNDS defaults to 4. CONFIG overrides configs/lm-rotten-tomatoes.toml,
# APPRENTICE_SHARED_DATA ../shared/data, TEACHER_CACHE a run folder whose teacher cache to
# read (default: the AFTER binary's first run writes one), BEFORE_LABEL the words for the
# older build in the raw file. Run folders go to target/lm-run-ab/.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/ab_rounds.sh
if [ $# -lt 2 ]; then
    echo "usage: bench/lm_run_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]" >&2
    exit 2
fi
before="$1"
after="$2"
rounds="${3:-4}"
config="${CONFIG:-configs/lm-rotten-tomatoes.toml}"
data="${APPRENTICE_SHARED_DATA:-../shared/data}"
out="${OUT:-}"
before_label="${BEFORE_LABEL:-the BEFORE binary}"
work=target/lm-run-ab
rm -rf "$work"
mkdir -p "$work"
cache="${TEACHER_CACHE:-}"
if [ -z "$cache" ]; then
    "$after" run "$config" --data "$data" --seeds 0 --out "$work/cache" > "$work/cache.log" 2>&1
    cache="$(dirname "$(find "$work/cache" -name teacher-logits.safetensors | head -n 1)")"
fi
machine="$(ab_machine)"
load_before="$(ab_load)"
echo "machine: $machine; load average: $load_before; teacher cache: $cache"
# One run of the build BINARY ($2) for side SIDE ($1) of round ROUND ($3).
run_one() {
    "$2" run "$config" --data "$data" --seeds 0 --teacher-cache "$cache" \
        --out "$work/$1-$3" > "$work/$1-$3.log" 2>&1
}
ab_rounds "$rounds" "$before" "$after" run_one
load_after="$(ab_load)"
python3 - "$work" "$rounds" "$out" "$machine" "$load_before" "$load_after" "$config" \
    "$before_label" <<'PY'
import glob
import json
import sys

sys.path.insert(0, "bench/reference")
from speed_raw import print_rows, row, write  # noqa: E402

work, rounds, out, machine, load_before, load_after, config, before_label = sys.argv[1:9]
rounds = range(1, int(rounds) + 1)


def students(side, r):
    (path,) = glob.glob(f"{work}/{side}-{r}/*/results.json")
    models = json.load(open(path))["lm"]["models"]
    return {m["name"]: m for m in models if "training_tokens_per_s" in m}


runs = {side: [students(side, r) for r in rounds] for side in ("before", "after")}
names = list(runs["after"][0])
for name in names:
    perplexities = {json.dumps(run[name]["perplexity"]) for side in runs for run in runs[side]}
    if len(perplexities) != 1:
        sys.exit(f"error: {name}: the perplexities differ between the builds or the rounds: "
                 f"{sorted(perplexities)}")
rows = [row(f"{name} training", "tokens/s",
            [run[name]["training_tokens_per_s"]["mean"] for run in runs["after"]],
            [run[name]["training_tokens_per_s"]["mean"] for run in runs["before"]])
        for name in names]
print_rows(rows, labels=("after", "before"))
print("every student's perplexity is the same in every run")
if out:
    write(out, {
        "benchmark": "bench/lm_run_ab.sh",
        "model": f"{config}, seed 0",
        "machine": machine,
        "threads": json.load(open(glob.glob(f"{work}/after-1/*/results.json")[0]))["lm"][
            "threads"],
        "reference": before_label,
        "label": "after",
        "reference_label": "before",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": "every student of the run, trained with the same teacher cache; "
                    "perplexities identical in every run",
        "rounds": len(rounds),
        "rows": rows,
    })
PY
echo "load average after: $load_after"
