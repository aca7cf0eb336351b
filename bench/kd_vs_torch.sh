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
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores; threads: $threads; features: ${features:-none}; load average: $(cut -d ' ' -f 1-3 /proc/loadavg)"
for workload in mlp-adam mlp-sgd cnn-adam cnn-sgd; do
    "$apprentice" bench-step --workload "$workload" --threads "$threads" \
        --steps "$steps" --repeats "$repeats" --json "$work/apprentice-$workload.json" >/dev/null 2>&1
    python3 bench/reference/kd_step.py --workload "$workload" --threads "$threads" \
        --steps "$steps" --repeats "$repeats" --json "$work/torch-$workload.json" >/dev/null
done
python3 - "$work" <<'EOF'
import json
import sys

work = sys.argv[1]
print(f"{'workload':<10} {'apprentice steps/s':>19} {'PyTorch steps/s':>16} {'apprentice / PyTorch':>21}")
for workload in ["mlp-adam", "mlp-sgd", "cnn-adam", "cnn-sgd"]:
    ours = json.load(open(f"{work}/apprentice-{workload}.json"))
    torch = json.load(open(f"{work}/torch-{workload}.json"))
    a = ours["results"][0]["steps_per_s"]
    t = torch["results"][0]["steps_per_s"]
    print(f"{workload:<10} {a:>19.2f} {t:>16.2f} {a / t:>20.2f}x")
print(f"({ours['backend']} against {torch['backend']}, {ours['threads']} threads)")
EOF
echo "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
