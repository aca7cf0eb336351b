#!/usr/bin/env bash
# The BERT sentence encoder (all-MiniLM-L6-v2) in apprentice against the same model in PyTorch
# + transformers, in one go: the example `bert_speed` builds documents of 8 to 256 word pieces
# from Rotten Tomatoes snippets, writes their ids, and times apprentice on them; then
# bench/reference/bert_speed.py times transformers' BertModel on the very same ids, with the same
# batch sizes, length-sorted batches and threads. The table gives sentences/s and the ratio
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
for engine in ${engines//,/ }; do
    target/release/examples/bert_speed "$model" "$texts" --count "$count" --batches 1,64 \
        --budget "$budget" --threads "$threads" --engine "$engine" \
        --finetune-steps "$finetune_steps" --finetune-batch 32 --finetune-length 64 \
        --ids-out "$work/ids.json" --json "$work/apprentice-$engine.json"
done
python3 bench/reference/bert_speed.py "$model" "$work/ids.json" --batches 1,64 \
    --budget "$budget" --threads "$threads" --json "$work/torch.json"
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$work" "$engines" "$out" "$machine" "$load_before" "$load_after" <<'PY'
import json
import sys

work, engines, out, machine, load_before, load_after = sys.argv[1:7]
engines = engines.split(",")
torch = json.load(open(f"{work}/torch.json"))
theirs = {r["batch_size"]: r["sentences_per_s"] for r in torch["results"]}
print(f"{'engine':<8} {'batch':>5} {'apprentice sent/s':>18} {'PyTorch sent/s':>15} {'apprentice / PyTorch':>21}")
for engine in engines:
    ours = json.load(open(f"{work}/apprentice-{engine}.json"))
    for row in ours["results"]:
        b = row["batch_size"]
        a = row["sentences_per_s"]
        t = theirs[b]
        print(f"{engine:<8} {b:>5} {a:>18.2f} {t:>15.2f} {a / t:>20.2f}x")
print(f"({ours['documents']} documents, mean {ours['mean_length']:.0f} word pieces; "
      f"{ours['threads']} threads against {torch['engine']} on {torch['threads']})")
rows = []
for engine in engines:
    ours = json.load(open(f"{work}/apprentice-{engine}.json"))
    label = "" if engine == "host" else f" ({engine} operations)"
    for row in ours["results"]:
        b = row["batch_size"]
        rows.append({"measure": f"encoder inference{label}, batch {b}", "unit": "sentences/s",
                     "apprentice": row["sentences_per_s"], "reference": theirs[b]})
    if engine == "host" and ours.get("finetune") and torch.get("finetune"):
        a, t = ours["finetune"], torch["finetune"]
        print(f"fine-tuning {a['steps_per_s']:.3f} steps/s against {t['steps_per_s']:.3f}: "
              f"{a['steps_per_s'] / t['steps_per_s']:.2f}x")
        rows.append({"measure": f"fine-tuning, batches of {a['batch_size']} x {a['length']} word pieces",
                     "unit": "steps/s", "apprentice": a["steps_per_s"], "reference": t["steps_per_s"]})
if out:
    raw = {
        "benchmark": "bench/bert_vs_torch.sh",
        "model": "all-MiniLM-L6-v2",
        "machine": machine,
        "threads": ours["threads"],
        "reference": torch["engine"],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": f"{ours['documents']} documents of 8 to 256 word pieces (mean "
                    f"{ours['mean_length']:.0f}) from Rotten Tomatoes snippets, sorted by length",
        "rows": rows,
    }
    with open(out, "w") as handle:
        json.dump(raw, handle, indent=2)
        handle.write("\n")
    print(f"wrote {out}")
PY
echo "load average after: $load_after"
