#!/usr/bin/env bash
# Two builds of the `bert_speed` example on the same workload, taking turns: each round times
# encoder inference at batch 1 and 64 and fine-tuning steps (the workload of
# bench/bert_vs_torch.sh) with the BEFORE binary and with the AFTER binary, which goes first
# alternating from round to round. Both must compute the same floats: the script fails unless
# every run's embeddings (a fingerprint of their bits, at each batch size) and fine-tuning step
# losses are identical, since a change of speed is only comparable on the same arithmetic. It
# prints each measure's median and the rounds' ratios after / before, and with OUT=FILE writes
# them as a speed-ratio raw file (`apprentice report --markdown=speed-ratios FILE`).
#
#   bench/bert_speed_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#
# Build the BEFORE binary from the older commit in its own worktree, e.g.
#   git worktree add ../before OLD
#   (cd ../before && cargo build --release -p apprentice --example bert_speed)
# and pass ../before/target/release/examples/bert_speed. ROUNDS defaults to 4; THREADS (default
# every core), BUDGET_S (seconds per batch size, default 5), DOCUMENTS (default 64),
# FINETUNE_STEPS (default 20), MODEL and TEXTS (default: ../shared/data) and BEFORE_LABEL (the
# words for the older build in the raw file) as their names say. Runs go to target/bert-speed-ab/.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/ab_rounds.sh
if [ $# -lt 2 ]; then
    echo "usage: bench/bert_speed_ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]" >&2
    exit 2
fi
before="$1"
after="$2"
rounds="${3:-4}"
threads="${THREADS:-$(nproc --all)}"
budget="${BUDGET_S:-5}"
count="${DOCUMENTS:-64}"
finetune_steps="${FINETUNE_STEPS:-20}"
data="${APPRENTICE_SHARED_DATA:-../shared/data}"
model="${MODEL:-$data/all-MiniLM-L6-v2}"
texts="${TEXTS:-$data/rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2}"
out="${OUT:-}"
before_label="${BEFORE_LABEL:-the BEFORE binary}"
work=target/bert-speed-ab
rm -rf "$work"
mkdir -p "$work"
machine="$(ab_machine)"
load_before="$(ab_load)"
echo "machine: $machine; threads: $threads; load average: $load_before"
# One run of the build BINARY ($2) for side SIDE ($1) of round ROUND ($3).
run_one() {
    "$2" "$model" "$texts" --count "$count" --batches 1,64 --budget "$budget" \
        --threads "$threads" --engine host --finetune-steps "$finetune_steps" \
        --finetune-batch 32 --finetune-length 64 --json "$work/$1-$3.json" \
        > "$work/$1-$3.log" 2>&1
}
ab_rounds "$rounds" "$before" "$after" run_one
load_after="$(ab_load)"
python3 - "$work" "$rounds" "$out" "$machine" "$load_before" "$load_after" "$before_label" <<'PY'
import json
import sys

sys.path.insert(0, "bench/reference")
from speed_raw import print_rows, row, write  # noqa: E402

work, rounds, out, machine, load_before, load_after, before_label = sys.argv[1:8]
rounds = range(1, int(rounds) + 1)
runs = {side: [json.load(open(f"{work}/{side}-{r}.json")) for r in rounds]
        for side in ("before", "after")}
every = runs["before"] + runs["after"]


def same(what, values):
    if len({json.dumps(v) for v in values}) != 1:
        sys.exit(f"error: {what} differ between the builds or the rounds")


batches = [r["batch_size"] for r in every[0]["results"]]
for b in batches:
    same(f"the embeddings at batch {b}",
         [next(x["embeddings_fingerprint"] for x in run["results"] if x["batch_size"] == b)
          for run in every])
same("the fine-tuning step losses", [run["finetune"]["step_losses"] for run in every])


def measure(side, b):
    return [next(x["sentences_per_s"] for x in run["results"] if x["batch_size"] == b)
            for run in runs[side]]


rows = [row(f"encoder inference, batch {b}", "sentences/s", measure("after", b),
            measure("before", b)) for b in batches]
tune = every[0]["finetune"]
rows.append(row(f"fine-tuning, batches of {tune['batch_size']} x {tune['length']} word pieces",
                "steps/s", [run["finetune"]["steps_per_s"] for run in runs["after"]],
                [run["finetune"]["steps_per_s"] for run in runs["before"]]))
print_rows(rows, labels=("after", "before"))
print("every run's embeddings and fine-tuning losses are the same")
if out:
    first = every[0]
    write(out, {
        "benchmark": "bench/bert_speed_ab.sh",
        "model": "all-MiniLM-L6-v2",
        "machine": machine,
        "threads": first["threads"],
        "reference": before_label,
        "label": "after",
        "reference_label": "before",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": f"{first['documents']} documents of 8 to 256 word pieces (mean "
                    f"{first['mean_length']:.0f}) from Rotten Tomatoes snippets, sorted by "
                    f"length, and {tune['steps']} fine-tuning steps; embeddings and losses "
                    f"identical in every run",
        "rounds": len(rounds),
        "rows": rows,
    })
PY
echo "load average after: $load_after"
