"""The raw file of a speed comparison against PyTorch, shared by the bench scripts.

`bench/bert_vs_torch.sh`, `bench/kd_vs_torch.sh` and `bench/ntk_vs_torch.sh` time both sides
in alternating rounds; each measure becomes one row with both sides' medians, every round and
the rounds' ratios apprentice / PyTorch, in the format `apprentice report
--markdown=speed-vs-pytorch` reads (`report/speed_ratio_table.rs`).
"""

import json
import statistics


def row(measure, unit, mine, theirs):
    """One measure: apprentice's and PyTorch's throughput in each round (higher is faster)."""
    return {
        "measure": measure,
        "unit": unit,
        "apprentice": statistics.median(mine),
        "reference": statistics.median(theirs),
        "apprentice_rounds": mine,
        "reference_rounds": theirs,
        "ratios": [m / t for m, t in zip(mine, theirs)],
    }


def print_rows(rows, width=48, labels=("apprentice", "PyTorch")):
    """The table a script prints: medians, the median ratio and the rounds' range; `labels`
    name the two sides."""
    print(f"{'measure':<{width}} {labels[0]:>11} {labels[1]:>9} {'median ratio':>13} "
          f"{'range':>13}")
    for r in rows:
        ratios = r["ratios"]
        print(f"{r['measure']:<{width}} {r['apprentice']:>11.3f} {r['reference']:>9.3f} "
              f"{statistics.median(ratios):>12.2f}x {min(ratios):>6.2f}-{max(ratios):.2f}x")


def write(out, raw):
    """Writes the raw file `out` (indented JSON, one trailing newline) and says so."""
    with open(out, "w") as handle:
        json.dump(raw, handle, indent=2)
        handle.write("\n")
    print(f"wrote {out}")
