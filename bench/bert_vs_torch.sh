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
# before the host kernels). The JSON of both sides is kept in target/bert-vs-torch/.
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
if ! python3 -c "import torch, transformers" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch and transformers: pip install torch transformers" >&2
    exit 3
fi
cargo build --release -p apprentice --example bert_speed
work=target/bert-vs-torch
mkdir -p "$work"
export OMP_NUM_THREADS="$threads"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores; threads: $threads; load average: $(cut -d ' ' -f 1-3 /proc/loadavg)"
for engine in ${engines//,/ }; do
    target/release/examples/bert_speed "$model" "$texts" --count "$count" --batches 1,64 \
        --budget "$budget" --threads "$threads" --engine "$engine" \
        --ids-out "$work/ids.json" --json "$work/apprentice-$engine.json"
done
python3 bench/reference/bert_speed.py "$model" "$work/ids.json" --batches 1,64 \
    --budget "$budget" --threads "$threads" --json "$work/torch.json"
python3 - "$work" "$engines" <<'PY'
import json
import sys

work, engines = sys.argv[1], sys.argv[2].split(",")
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
PY
echo "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
