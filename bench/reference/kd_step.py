#!/usr/bin/env python3
"""PyTorch reference for `apprentice bench-step`: the same knowledge-distillation training step.

Workloads (batch 128 of random 1x28x28 inputs in [-1, 1) and random labels out of 10 classes,
8 distinct batches cycled through, float32, frozen teacher MLP 784-1200-1200-10 run under
torch.no_grad() on every step):

- mlp-adam, mlp-sgd: student MLP 784-800-800-10 (ReLU);
- cnn-adam, cnn-sgd: student conv3x3 1->32 'same', ReLU, max-pool 2, conv3x3 32->64 'same',
  ReLU, max-pool 2, linear 3136->10.

Loss: Hinton's KD with T = 4 and alpha = 0.5, batch means, exactly apprentice's kd_loss:
alpha * CE(s, y) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T)).
Optimiser: Adam (lr 1e-3, eps 1e-8) or SGD (lr 0.01, momentum 0.9, dampening 0).
Each step copies the batch from host memory, reads the loss back (loss.item(), as apprentice
reads it to catch a NaN) and updates the student.

Prints one line per workload and, with --json FILE, writes the measurements in the layout of
`apprentice bench-step --json`. Timing: --warmup untimed steps, then --repeats runs of --steps
steps; the median steps/s is reported.

Exit status: 0 on success, 2 on bad arguments, 3 when torch is not installed.
"""

import argparse
import json
import statistics
import sys
import time

BATCH = 128
CLASSES = 10
POOL_BATCHES = 8
TEMPERATURE = 4.0
ALPHA = 0.5
WORKLOADS = ["mlp-adam", "mlp-sgd", "cnn-adam", "cnn-sgd"]


def import_torch():
    try:
        import torch
    except ImportError:
        print(
            "error: torch is not installed; the PyTorch reference needs it: pip install torch",
            file=sys.stderr,
        )
        sys.exit(3)
    return torch


def build(torch, workload):
    nn = torch.nn
    teacher = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 1200),
        nn.ReLU(),
        nn.Linear(1200, 1200),
        nn.ReLU(),
        nn.Linear(1200, CLASSES),
    ).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    if workload.startswith("mlp"):
        student = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 800),
            nn.ReLU(),
            nn.Linear(800, 800),
            nn.ReLU(),
            nn.Linear(800, CLASSES),
        )
    else:
        student = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, CLASSES),
        )
    if workload.endswith("adam"):
        optimizer = torch.optim.Adam(student.parameters(), lr=1e-3, eps=1e-8)
    else:
        optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, dampening=0.0)
    return teacher, student, optimizer


def kd_loss(torch, student_logits, teacher_logits, labels):
    functional = torch.nn.functional
    soft = functional.kl_div(
        functional.log_softmax(student_logits / TEMPERATURE, dim=1),
        functional.log_softmax(teacher_logits / TEMPERATURE, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = functional.cross_entropy(student_logits, labels)
    return ALPHA * hard + (1.0 - ALPHA) * TEMPERATURE * TEMPERATURE * soft


def measure(torch, workload, args):
    generator = torch.Generator().manual_seed(11)
    pool = [
        (
            torch.rand(BATCH, 1, 28, 28, generator=generator) * 2.0 - 1.0,
            torch.randint(0, CLASSES, (BATCH,), generator=generator),
        )
        for _ in range(POOL_BATCHES)
    ]
    teacher, student, optimizer = build(torch, workload)
    buffer = torch.empty(BATCH, 1, 28, 28)
    position = 0

    def step():
        nonlocal position
        inputs, labels = pool[position % POOL_BATCHES]
        position += 1
        buffer.copy_(inputs)
        with torch.no_grad():
            teacher_logits = teacher(buffer)
        loss = kd_loss(torch, student(buffer), teacher_logits, labels)
        value = loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return value

    for _ in range(args.warmup):
        step()
    repeats = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        repeats.append(args.steps / (time.perf_counter() - started))
    steps_per_s = statistics.median(repeats)
    print(
        f"{workload:<14} {steps_per_s:8.2f} steps/s  {1e3 / steps_per_s:8.2f} ms/step  "
        f"(median of {args.repeats} x {args.steps} steps)"
    )
    return {
        "workload": workload,
        "steps_per_s": steps_per_s,
        "ms_per_step": 1e3 / steps_per_s,
        "repeats": repeats,
        "steps": args.steps,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="all", choices=WORKLOADS + ["all"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        print("error: --steps and --repeats need at least 1, --warmup at least 0", file=sys.stderr)
        sys.exit(2)
    torch = import_torch()
    import os

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    workloads = WORKLOADS if args.workload == "all" else [args.workload]
    results = [measure(torch, workload, args) for workload in workloads]
    if args.json:
        report = {
            "implementation": "pytorch",
            "backend": f"torch {torch.__version__} CPU",
            "threads": threads,
            "batch_size": BATCH,
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()
