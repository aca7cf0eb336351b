#!/usr/bin/env bash
# What each of apprentice's own speed-ups of the knowledge-distillation training step is worth
# today: `apprentice bench-step` on the four workloads of bench/kd_vs_torch.sh, as shipped and
# with one change switched off at a time:
#
#   teacher-inline     the frozen teacher on the student's thread (--teacher-thread off)
#                      instead of a thread of its own, one batch ahead;
#   unfused-optimizer  burn's optimisers (about ten tensor operations per parameter) instead of
#                      the fused one-pass updates (--unfused-optimizer);
#   glibc-allocator    glibc's default allocator thresholds instead of keeping freed buffers
#                      in the process (GLIBC_TUNABLES set to glibc's own default trim
#                      threshold, which makes apprentice leave the allocator alone).
#
#   bench/kd_ablation.sh [THREADS] [STEPS] [REPEATS]
#
# ROUNDS=N (default 3) repeats everything N times, the variants taking turns workload by
# workload; OUT=FILE writes the raw file (bench/RESULTS.md quotes bench/data/kd-ablation.json).
# Each figure is the median of REPEATS runs of STEPS steps after 5 warm-up steps; the raw file
# keeps every round and, per variant, the rounds' ratios shipped / variant (above 1: the change
# makes the step faster). apprentice's convolution kernels have no switch and are not in it.
set -euo pipefail
cd "$(dirname "$0")/.."
cores="$(nproc --all)"
threads="${1:-$cores}"
steps="${2:-30}"
repeats="${3:-3}"
rounds="${ROUNDS:-3}"
out="${OUT:-}"
cargo build --release -p apprentice-cli
apprentice=target/release/apprentice
work=target/kd-ablation
mkdir -p "$work"
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $cores cores"
load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "machine: $machine; threads: $threads; load average: $load_before"
variants="shipped teacher-inline unfused-optimizer glibc-allocator"
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds"
    for workload in mlp-adam mlp-sgd cnn-adam cnn-sgd; do
        for variant in $variants; do
            flags=()
            tunables=""
            case "$variant" in
                teacher-inline) flags=(--teacher-thread off) ;;
                unfused-optimizer) flags=(--unfused-optimizer) ;;
                glibc-allocator) tunables="glibc.malloc.trim_threshold=131072" ;;
            esac
            env ${tunables:+GLIBC_TUNABLES=$tunables} "$apprentice" bench-step \
                --workload "$workload" --threads "$threads" --steps "$steps" \
                --repeats "$repeats" "${flags[@]}" \
                --json "$work/$variant-$workload-$round.json" >/dev/null 2>&1
        done
    done
done
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$work" "$rounds" "$out" "$machine" "$load_before" "$load_after" "$steps" "$repeats" \
    "$threads" $variants <<'PY'
import json
import statistics
import sys

work, rounds, out, machine, load_before, load_after, steps, repeats, threads = sys.argv[1:10]
variants = sys.argv[10:]
rounds = range(1, int(rounds) + 1)
rows = []
for workload in ["mlp-adam", "mlp-sgd", "cnn-adam", "cnn-sgd"]:
    speed = {
        v: [json.load(open(f"{work}/{v}-{workload}-{r}.json"))["results"][0]["steps_per_s"]
            for r in rounds]
        for v in variants
    }
    row = {"workload": workload, "unit": "steps/s"}
    for v in variants:
        row[v] = {"median": statistics.median(speed[v]), "rounds": speed[v]}
        if v != "shipped":
            ratios = [s / x for s, x in zip(speed["shipped"], speed[v])]
            row[v]["gain"] = {"median": statistics.median(ratios), "min": min(ratios),
                              "max": max(ratios), "rounds": ratios}
    rows.append(row)
    print(f"{workload:<10} " + "  ".join(
        f"{v} {row[v]['median']:.1f}" + (f" ({row[v]['gain']['median']:.2f}x)" if v != "shipped" else "")
        for v in variants))
if out:
    raw = {
        "benchmark": "bench/kd_ablation.sh",
        "machine": machine,
        "threads": int(threads),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "workload": f"the KD step workloads of bench/kd_vs_torch.sh; each figure the median of "
                    f"{repeats} runs of {steps} steps after 5 warm-up steps, default build",
        "variants": variants,
        "rounds": len(list(rounds)),
        "rows": rows,
    }
    with open(out, "w") as handle:
        json.dump(raw, handle, indent=2)
        handle.write("\n")
    print(f"wrote {out}")
PY
echo "load average after: $load_after"
