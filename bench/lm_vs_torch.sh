#!/usr/bin/env bash
# The language-model teacher's scoring and a student's training step in apprentice against the
# same work in PyTorch + transformers, in one go: the example `lm_speed` tokenises the corpus
# of configs/lm-rotten-tomatoes.toml, times SmolLM2-135M-Instruct (read from its GGUF file)
# scoring the first 64 snippets 32 at a time, computes its top-64 cache of them and times a
# student of the config's shape training on them (forward KL against the cache, batch 4,
# AdamW); then bench/reference/lm_speed.py loads the same GGUF in transformers (dequantised to
# float32) and times the same scoring and the same step (LlamaForCausalLM of the same shape)
# on the very same ids, cache and threads. It prints tokens/s and the ratios apprentice /
# PyTorch (above 1: apprentice is faster) and writes the raw file of the results page.
#
#   bench/lm_vs_torch.sh [THREADS] [BUDGET_S]
#
# THREADS defaults to every core, BUDGET_S to 30 timed seconds per measurement (each runs at
# least one pass or three steps). APPRENTICE_SHARED_DATA overrides ../shared/data, CONFIG the
# experiment file, TEXTS the number of snippets (64), OUT the raw file
# (docs/results/data/lm-speed-vs-pytorch.json). With FEATURES=parallel the example is built
# with `--features parallel` (burn's operations on every core) in target/bench-parallel.
# The inputs and JSON of both sides are kept in target/lm-vs-torch/. After a new raw file,
# regenerate the page: APPRENTICE_BLESS=1 cargo test --release --workspace --test docs_generated
set -euo pipefail
cd "$(dirname "$0")/.."
cores="$(nproc --all)"
threads="${1:-$cores}"
budget="${2:-30}"
data="${APPRENTICE_SHARED_DATA:-../shared/data}"
config="${CONFIG:-configs/lm-rotten-tomatoes.toml}"
texts="${TEXTS:-64}"
out="${OUT:-docs/results/data/lm-speed-vs-pytorch.json}"
features="${FEATURES:-}"
if ! python3 -c "import torch, transformers, gguf, safetensors" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch, transformers, gguf and safetensors: pip install torch transformers gguf safetensors accelerate" >&2
    exit 3
fi
if [ -n "$features" ]; then
    CARGO_TARGET_DIR="target/bench-$features" cargo build --release --workspace --example lm_speed --features "apprentice/$features"
    example="target/bench-$features/release/examples/lm_speed"
else
    cargo build --release --workspace --example lm_speed
    example=target/release/examples/lm_speed
fi
work=target/lm-vs-torch
mkdir -p "$work"
export OMP_NUM_THREADS="$threads"
teacher="$(sed -n 's/^teacher *= *"\(.*\)"/\1/p' "$config" | head -n 1)"
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "machine: $cpu, $cores cores; threads: $threads; features: ${features:-none}; load average: $load_before"
"$example" "$config" --data "$data" --out "$work" --texts "$texts" --budget "$budget" --threads "$threads"
load_between="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 bench/reference/lm_speed.py "$data/$teacher" "$work" --budget "$budget" --threads "$threads" \
    --json "$work/torch.json" 2> >(grep -v -e "de-quantizing" -e "Loading weights" >&2)
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$work" "$out" "$threads" "$budget" "$config" "$teacher" "$cpu" "$cores" "${features:-none}" \
    "$load_before" "$load_between" "$load_after" <<'PY'
import json
import sys

work, out, threads, budget, config, teacher, cpu, cores, features = sys.argv[1:10]
loads = [[float(x) for x in value.split()] for value in sys.argv[10:13]]
ours = json.load(open(f"{work}/apprentice.json"))
theirs = json.load(open(f"{work}/torch.json"))
rows = [("teacher_scoring", "teacher scoring"), ("student_training", "student training")]
ratios = {key: ours[key]["tokens_per_s"] / theirs[key]["tokens_per_s"] for key, _ in rows}
raw = {
    "command": ("" if out == "docs/results/data/lm-speed-vs-pytorch.json" else f"OUT={out} ")
    + f"bench/lm_vs_torch.sh {threads} {budget}",
    "config": config,
    "teacher": teacher,
    "machine": {
        "cpu": cpu,
        "cores": int(cores),
        "load_average": {
            "before": loads[0],
            "between": loads[1],
            "after": loads[2],
            "note": "1, 5 and 15-minute load averages before apprentice, between the two sides and after PyTorch",
        },
    },
    "threads": int(threads),
    "budget_s": float(budget),
    "features": features,
    "sequences": ours["sequences"],
    "tokens": ours["tokens"],
    "apprentice": ours,
    "pytorch": theirs,
    "ratios": ratios,
}
with open(out, "w") as f:
    json.dump(raw, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"{'measure':<18} {'apprentice tok/s':>17} {'PyTorch tok/s':>14} {'apprentice / PyTorch':>21}")
for key, title in rows:
    a, t = ours[key]["tokens_per_s"], theirs[key]["tokens_per_s"]
    print(f"{title:<18} {a:>17.1f} {t:>14.1f} {a / t:>20.2f}x")
print(f"({ours['engine']} against {theirs['engine']}; {threads} threads; wrote {out})")
PY
echo "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
