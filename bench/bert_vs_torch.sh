#!/usr/bin/env bash
# The BERT sentence encoder (all-MiniLM-L6-v2) in apprentice against the same model in PyTorch
# + transformers, in one go: the example `bert_speed` builds documents of 8 to 256 word pieces
# from Rotten Tomatoes snippets, writes their ids, and times apprentice on them; then
# bench/reference/bert_speed.py times transformers' BertModel on the very same ids, with the same
# batch sizes, length-sorted batches and threads. The two sides take turns for ROUNDS rounds
# (default 3), so that a slow minute of a shared machine falls on both; the table gives each
# side's median sentences/s and the median, lowest and highest of the rounds' ratios
# apprentice / PyTorch (above 1: apprentice is faster).
#
#   bench/bert_vs_torch.sh [THREADS] [BUDGET_S] [DOCUMENTS]
#
# THREADS defaults to every core, BUDGET_S to 10 timed seconds per batch size (every batch runs
# at least once), DOCUMENTS to 128. MODEL and TEXTS override the model folder and the corpus
# (default: ../shared/data). ENGINES=host,burn also times burn's padded operations (the encoder
# before the host kernels). FINETUNE_STEPS (default 20, 0 for none) also times fine-tuning
# steps (batches of 32 documents cut to 64 word pieces) on both sides. The JSON of both sides
# is kept in target/bert-vs-torch/; OUT=FILE also writes one raw file of every ratio (the
# table of docs/results/bert-speed.md is generated from docs/results/data/bert-speed.json).
set -euo pipefail
cd "$(dirname "$0")/.."
cores="$(nproc --all)"
threads="${1:-$cores}"
budget="${2:-10}"
count="${3:-128}"
data="${APPRENTICE_SHARED_DATA:-../shared/data}"
model="${MODEL:-$data/all-MiniLM-L6-v2}"
texts="${TEXTS:-$data/rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2}"
engines="${ENGINES:-host}"
finetune_steps="${FINETUNE_STEPS:-20}"
rounds="${ROUNDS:-3}"
out="${OUT:-}"
if ! python3 -c "import torch, transformers" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch and transformers: pip install torch transformers" >&2
    exit 3
fi
cargo build --release -p apprentice --example bert_speed
work=target/bert-vs-torch
mkdir -p "$work"
export OMP_NUM_THREADS="$threads"
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores"
load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "machine: $machine; threads: $threads; load average: $load_before"
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds"
    for engine in ${engines//,/ }; do
        target/release/examples/bert_speed "$model" "$texts" --count "$count" --batches 1,64 \
            --budget "$budget" --threads "$threads" --engine "$engine" \
            --finetune-steps "$finetune_steps" --finetune-batch 32 --finetune-length 64 \
            --ids-out "$work/ids.json" --json "$work/apprentice-$engine-$round.json"
    done
    python3 bench/reference/bert_speed.py "$model" "$work/ids.json" --batches 1,64 \
        --budget "$budget" --threads "$threads" --json "$work/torch-$round.json"
done
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$work" "$engines" "$out" "$machine" "$load_before" "$load_after" "$rounds" <<'PY'
import json
import sys

sys.path.insert(0, "bench/reference")
from speed_raw import print_rows, row, write  # noqa: E402

work, engines, out, machine, load_before, load_after, rounds = sys.argv[1:8]
engines = engines.split(",")
rounds = range(1, int(rounds) + 1)
torch = [json.load(open(f"{work}/torch-{r}.json")) for r in rounds]


rows = []
for engine in engines:
    ours = [json.load(open(f"{work}/apprentice-{engine}-{r}.json")) for r in rounds]
    label = "" if engine == "host" else f" ({engine} operations)"
    pairs = []
    for result in ours[0]["results"]:
        b = result["batch_size"]
        pairs.append((f"encoder inference{label}, batch {b}", "sentences/s",
                      [next(x["sentences_per_s"] for x in o["results"] if x["batch_size"] == b)
                       for o in ours],
                      [next(x["sentences_per_s"] for x in t["results"] if x["batch_size"] == b)
                       for t in torch]))
    if engine == "host" and ours[0].get("finetune") and torch[0].get("finetune"):
        a = ours[0]["finetune"]
        pairs.append((f"fine-tuning, batches of {a['batch_size']} x {a['length']} word pieces",
                      "steps/s", [o["finetune"]["steps_per_s"] for o in ours],
                      [t["finetune"]["steps_per_s"] for t in torch]))
    rows.extend(row(*pair) for pair in pairs)
print_rows(rows)
first = json.load(open(f"{work}/apprentice-{engines[0]}-1.json"))
print(f"({first['documents']} documents, mean {first['mean_length']:.0f} word pieces; "
      f"{first['threads']} threads against {torch[0]['engine']} on {torch[0]['threads']}; "
      f"{len(rounds)} rounds)")
if out:
    raw = {
        "benchmark": "bench/bert_vs_torch.sh",
        "model": "all-MiniLM-L6-v2",
        "machine": machine,
        "threads": first["threads"],
        "reference": torch[0]["engine"],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": f"{first['documents']} documents of 8 to 256 word pieces (mean "
                    f"{first['mean_length']:.0f}) from Rotten Tomatoes snippets, sorted by length",
        "rounds": len(rounds),
        "rows": rows,
    }
    write(out, raw)
PY
echo "load average after: $load_after"
