#!/usr/bin/env bash
# apprentice's empirical NTK against the PyTorch reference (torch.func jacrev + vmap), in one go:
# the same n inputs of the digits training split, the same student weights (the quickstart's
# 64-32-10 student at its initial weights for seed 0, saved as a checkpoint for torch), torch
# on every core. Prints the values check (relative Frobenius difference, goal 1e-4) and both
# times with their ratio (goal: apprentice at least 5x faster).
#
#   bench/ntk_vs_torch.sh [N] [KERNEL] [EXTRA apprentice complexity ARGS...]
#
# N defaults to 1000 and KERNEL to trace (or block). Needs PyTorch for the reference:
# pip install torch safetensors numpy
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
kernel="${2:-trace}"
shift $(( $# > 2 ? 2 : $# ))
if ! python3 -c "import torch, safetensors, numpy" 2>/dev/null; then
    echo "error: the PyTorch reference needs torch, safetensors and numpy: pip install torch safetensors numpy" >&2
    exit 3
fi
threads="$(nproc)"
export OMP_NUM_THREADS="$threads"
cargo build --release -p apprentice-cli
work=target/ntk-vs-torch
mkdir -p "$work"
target/release/apprentice complexity --quiet --subset "$n" --kernel "$kernel" --targets labels \
    --out "$work" --dump-kernel "$work/kernel.safetensors" "$@" >"$work/complexity.txt"
head -n 1 "$work/complexity.txt"
python3 bench/reference/ntk.py "$work/kernel.safetensors" --threads "$threads"
