#!/usr/bin/env bash
# apprentice's empirical NTK against the PyTorch reference (torch.func jacrev + vmap), in one go:
# the same n inputs of the digits training split, the same student weights (the quickstart's
# 64-32-10 student at its initial weights for seed 0, saved as a checkpoint for torch), torch
# on every core. Prints, round by round, the values check (relative Frobenius difference, goal
# 1e-4; a larger one stops the script) and both times with their ratio (goal: apprentice at
# least 5x faster).
#
#   bench/ntk_vs_torch.sh [N] [KERNEL] [EXTRA apprentice complexity ARGS...]
#
# N defaults to 1000 and KERNEL to trace (or block). ROUNDS=R (default 1) repeats both sides
# R times, taking turns; OUT=FILE writes one raw file of every round, apprentice's and torch's
# throughput in kernels per second (bench/RESULTS.md's table is generated from
# bench/data/ntk-vs-torch.json by `apprentice report --markdown=speed-vs-pytorch`). Needs
# PyTorch for the reference: pip install torch safetensors numpy
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
kernel="${2:-trace}"
shift $(( $# > 2 ? 2 : $# ))
if ! python3 -c "import torch, safetensors, numpy" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch, safetensors and numpy: pip install torch safetensors numpy" >&2
    exit 3
fi
threads="$(nproc --all)"
rounds="${ROUNDS:-1}"
out="${OUT:-}"
export OMP_NUM_THREADS="$threads"
cargo build --release -p apprentice-cli
work=target/ntk-vs-torch
mkdir -p "$work"
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) cores"
load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    target/release/apprentice complexity --quiet --subset "$n" --kernel "$kernel" --targets labels \
        --out "$work" --dump-kernel "$work/kernel.safetensors" "$@" >"$work/complexity.txt"
    head -n 1 "$work/complexity.txt"
    # Fails (and stops the script) when the kernels differ by more than the tolerance.
    python3 bench/reference/ntk.py "$work/kernel.safetensors" --threads "$threads" --json \
        >"$work/round-$round.json"
    python3 - "$work/round-$round.json" "$round" <<'EOF'
import json
import sys

r = json.load(open(sys.argv[1]))
print(f"round {sys.argv[2]}: relative Frobenius difference {r['relative_frobenius_difference']:.3e}; "
      f"torch.func {r['torch_seconds']:.4f} s on {r['threads']} threads, apprentice "
      f"{r['apprentice_seconds']:.4f} s on one: {r['speedup']:.1f}x")
EOF
done
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
if [ -n "$out" ]; then
    python3 - "$work" "$rounds" "$out" "$machine" "$load_before" "$load_after" "$*" <<'EOF'
import json
import sys

sys.path.insert(0, "bench/reference")
from speed_raw import row, write  # noqa: E402

work, rounds, out, machine, load_before, load_after, extra = sys.argv[1:8]
results = [json.load(open(f"{work}/round-{r}.json")) for r in range(1, int(rounds) + 1)]
first = results[0]
mine = [1.0 / r["apprentice_seconds"] for r in results]
theirs = [1.0 / r["torch_seconds"] for r in results]
worst = max(r["relative_frobenius_difference"] for r in results)
raw = {
    "benchmark": "bench/ntk_vs_torch.sh",
    "model": f"the student of `apprentice complexity {extra}`" if extra
             else "the quickstart's digits student (MLP 64-32-10) at its seed-0 initial weights",
    "machine": machine,
    "threads": first["threads"],
    "apprentice_threads": 1,
    "reference": f"torch.func (jacrev + vmap, torch {first['torch_version']}, "
                 f"{first['dtype']}; apprentice in f64)",
    "load_average_before": load_before,
    "load_average_after": load_after,
    "workload": f"{first['examples']} inputs of " + ("that run's training split" if extra
                                                      else "the digits training split"),
    "rounds": len(results),
    "rows": [row(f"empirical NTK, {first['kind']} kernel of {first['examples']} inputs "
                 f"(kernels differ by {worst:.1e}, relative Frobenius)",
                 "kernels/s", mine, theirs)],
}
write(out, raw)
EOF
fi
