#!/usr/bin/env bash
# apprentice's knowledge-distillation training step against the same step in PyTorch, in one
# go: `apprentice bench-step` and bench/reference/kd_step.py run the same workloads (frozen
# teacher MLP 784-1200-1200-10; student MLP 784-800-800-10 or the small CNN; batch 128; KD with
# T = 4, alpha = 0.5; Adam or SGD with momentum) on the same number of threads, one after the
# other, workload by workload, and the table gives steps/s and the ratio apprentice / PyTorch
# (above 1: apprentice is faster).
#
#   bench/kd_vs_torch.sh [THREADS] [STEPS] [REPEATS]
#
# ROUNDS=N (default 1) repeats the whole comparison N times, the two sides still taking turns
# workload by workload, so that a slow minute of a shared machine falls on both; the table then
# gives each side's median over the rounds and the median, lowest and highest of the rounds'
# ratios. OUT=FILE also writes one raw file of every round (bench/RESULTS.md's table is
# generated from bench/data/kd-vs-torch.json by `apprentice report --markdown=speed-vs-pytorch`).
#
# THREADS defaults to every core, STEPS to 50 timed steps per repeat, REPEATS to 3 (medians).
# In the default build burn's own operations run on one thread whatever THREADS says; with
# THREADS > 1 the frozen teacher runs on a thread of its own and apprentice's convolution
# kernels split each batch over THREADS threads. With FEATURES=parallel the script builds
# apprentice with `--features parallel` (burn's operations on every core, SIMD kernels) in its
# own target folder, target/bench-parallel, leaving target/release untouched.
# The JSON of both sides is kept in target/kd-vs-torch/. Needs PyTorch: pip install torch
set -euo pipefail
cd "$(dirname "$0")/.."
cores="$(nproc --all)"
threads="${1:-$cores}"
steps="${2:-50}"
repeats="${3:-3}"
rounds="${ROUNDS:-1}"
out="${OUT:-}"
if ! python3 -c "import torch" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch, which is not installed: pip install torch" >&2
    exit 3
fi
features="${FEATURES:-}"
if [ -n "$features" ]; then
    CARGO_TARGET_DIR=target/bench-$features cargo build --release -p apprentice-cli --features "$features"
    apprentice=target/bench-$features/release/apprentice
else
    cargo build --release -p apprentice-cli
    apprentice=target/release/apprentice
fi
work=target/kd-vs-torch
mkdir -p "$work"
export OMP_NUM_THREADS="$threads"
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores"
load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "machine: $machine; threads: $threads; features: ${features:-none}; load average: $load_before"
for round in $(seq 1 "$rounds"); do
    if [ "$rounds" -gt 1 ]; then
        echo "round $round of $rounds"
    fi
    for workload in mlp-adam mlp-sgd cnn-adam cnn-sgd; do
        "$apprentice" bench-step --workload "$workload" --threads "$threads" \
            --steps "$steps" --repeats "$repeats" \
            --json "$work/apprentice-$workload-$round.json" >/dev/null 2>&1
        python3 bench/reference/kd_step.py --workload "$workload" --threads "$threads" \
            --steps "$steps" --repeats "$repeats" --json "$work/torch-$workload-$round.json" >/dev/null
    done
done
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$work" "$rounds" "$out" "$machine" "$load_before" "$load_after" "$steps" "$repeats" \
    "${features:-}" "${GLIBC_TUNABLES:-}" <<'EOF'
import json
import sys

sys.path.insert(0, "bench/reference")
from speed_raw import print_rows, row, write  # noqa: E402

work, rounds, out, machine, load_before, load_after, steps, repeats, features, tunables = \
    sys.argv[1:11]
rounds = range(1, int(rounds) + 1)
workloads = ["mlp-adam", "mlp-sgd", "cnn-adam", "cnn-sgd"]
rows = []
for workload in workloads:
    ours = [json.load(open(f"{work}/apprentice-{workload}-{r}.json")) for r in rounds]
    torch = [json.load(open(f"{work}/torch-{workload}-{r}.json")) for r in rounds]
    mine = [o["results"][0]["steps_per_s"] for o in ours]
    theirs = [t["results"][0]["steps_per_s"] for t in torch]
    rows.append(row(f"KD training step, {workload}", "steps/s", mine, theirs))
print_rows(rows, width=28)
print(f"({ours[0]['backend']} against {torch[0]['backend']}, {ours[0]['threads']} threads, "
      f"{len(rounds)} rounds)")
if out:
    build = f", apprentice built with --features {features}" if features else ""
    if tunables:
        build += f", GLIBC_TUNABLES={tunables} for both sides"
    raw = {
        "benchmark": "bench/kd_vs_torch.sh",
        "model": "frozen teacher MLP 784-1200-1200-10; students MLP 784-800-800-10 (mlp-*) "
                 "and a two-convolution CNN (cnn-*)",
        "machine": machine,
        "threads": ours[0]["threads"],
        "reference": torch[0]["backend"],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": f"batches of 128 random 1x28x28 inputs, KD with T = 4 and alpha = 0.5, "
                    f"Adam or SGD with momentum; each figure the median of {repeats} runs of "
                    f"{steps} steps after 5 warm-up steps{build}",
        "rounds": len(rounds),
        "rows": rows,
    }
    write(out, raw)
EOF
echo "load average after: $load_after"
