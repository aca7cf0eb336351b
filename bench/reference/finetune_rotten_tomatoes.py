#!/usr/bin/env python3
"""Fine-tune the teacher of an apprentice text run with PyTorch + transformers, on the same
texts, with the same recipe and seeds, and compare the test accuracies.

apprentice fine-tunes its teacher (`[teacher] kind = "finetune"`) and writes, in the run
folder, the experiment as run (`config.toml`) and each seed's split (`seed-N/split.json`: the
row indices of the training, validation and test texts). This script reads both, loads the
same data file the same way (CSV, the `drop_labels` rows left out, `max_rows`, classes in
`classes` order), tokenizes with the model folder's tokenizer (truncation at the recipe's
`max_length`), and fine-tunes `BertForSequenceClassification` from the same folder with the
recipe of `[teacher.finetune]`, as apprentice does:

- AdamW (betas 0.9, 0.999, eps 1e-8) with the recipe's weight decay on every parameter
  (apprentice decays every parameter, so this does too; the Trainer would skip biases and
  LayerNorms), peak learning rate `lr`;
- linear warm-up over ceil(warmup_ratio x steps) steps, then linear decay to 0
  (`get_linear_schedule_with_warmup`);
- gradient clipping at `max_grad_norm` (`clip_grad_norm_`);
- dropout from the model's config.json (0.1), on the encoder and before the classifier, or
  the recipe's `dropout` everywhere when it sets one;
- batches of `batch_size` texts shuffled each epoch from the seed, padded to their longest;
- the `cls` head (`BertForSequenceClassification`'s pooler, started from the folder's
  `pooler.dense`), or, for `pooling = "mean"`, mean pooling of the last hidden states;
- the model of the last epoch is evaluated on the test texts.

Only `top_layers` absent (the whole model trains) and the `cls` and `mean` heads are supported.
The random draws (head initialisation, batch order, dropout masks) are PyTorch's, so per-seed
accuracies differ from apprentice's by run-to-run noise; the comparison is of means over seeds.

Usage, from the repository root, after an apprentice run:

    python3 bench/reference/finetune_rotten_tomatoes.py RUN_DIR [--data ../shared/data]
        [--threads 2] [--repeats R] [--out FILE]

It prints, per seed, the accuracy of both (apprentice's from `seed-N/teacher.record.json`) and
the mean +- std of each, and writes PyTorch's to --out when given (the table of
docs/results/rotten-tomatoes-finetune.md is generated from that file and apprentice's
results.json). With --wait it runs beside the apprentice run, waiting for each seed's split.
With --repeats R it fine-tunes R times on each seed's split, with torch seeds seed, seed + 1000,
..., so that PyTorch's own run-to-run spread on one split is measured too (the per-seed table
uses the first; the file lists every run under "repeats"). Needs torch and transformers.

With --trace DIR it also writes, for every fine-tuning, `DIR/seed-S-torch-T.json`: the
recipe, the word-piece ids and labels of the training and test texts, the initial
classification layer, each epoch's order of the training texts, the loss of every step and the
test predictions. apprentice's `finetune_replay` example fine-tunes from that same layer in
that same order and compares the two runs step by step (use it with dropout off, where
nothing else is drawn at random).
"""

import argparse
import bz2
import csv
import gzip
import io
import json
import math
import os
import statistics
import sys
import time
import tomllib


def open_text(path):
    if path.endswith(".bz2"):
        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", newline="")
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_rows(data_config, root):
    """The texts and class indices, as apprentice's CSV reader gives them."""
    path = os.path.join(root, data_config["path"]) if root else data_config["path"]
    text_column = data_config.get("text_column", "text")
    label_column = data_config.get("label_column", "label")
    drop = set(data_config.get("drop_labels", []))
    classes = data_config.get("classes", [])
    max_rows = data_config.get("max_rows")
    texts, labels = [], []
    with open_text(path) as handle:
        for record in csv.DictReader(handle):
            label = record[label_column].strip()
            if label in drop:
                continue
            texts.append(record[text_column])
            labels.append(label)
            if max_rows is not None and len(texts) >= max_rows:
                break
    if not classes:
        classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return texts, [index[label] for label in labels], classes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", help="the folder paths are relative to (default: the run's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fine-tunings per split, torch seeds seed + 1000 k (default 1)")
    parser.add_argument("--trace", help="write each fine-tuning's draws and steps to this folder")
    parser.add_argument("--wait", action="store_true",
                        help="wait for each seed's split.json (to run beside the apprentice run)")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.run_dir, "config.toml"), "rb") as handle:
        config = tomllib.load(handle)
    root = args.data or config.get("data_root")
    teacher = config["teacher"]
    if teacher.get("kind") != "finetune":
        sys.exit(f"{args.run_dir}: the teacher is not fine-tuned (teacher.kind = {teacher.get('kind')!r})")
    recipe = {
        "epochs": 3, "batch_size": 32, "lr": 2e-5, "weight_decay": 0.01, "warmup_ratio": 0.1,
        "max_grad_norm": 1.0, "max_length": 128, "pooling": "cls", "dropout": None,
    }
    recipe.update(teacher.get("finetune", {}))
    if recipe.get("top_layers") is not None:
        sys.exit("top_layers is not supported by this script")
    model_dir = os.path.join(root, config["text"]["model"]) if root else config["text"]["model"]
    texts, labels, classes = load_rows(config["data"], root)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(texts, truncation=True, max_length=recipe["max_length"])["input_ids"]

    def ours(seed):
        # The teacher's record, written when apprentice finished fine-tuning it for the seed.
        path = os.path.join(args.run_dir, f"seed-{seed}", "teacher.record.json")
        try:
            with open(path) as handle:
                return json.load(handle)["metrics"]["accuracy"]
        except (OSError, KeyError, ValueError):
            return float("nan")

    rows = []
    repeats = []
    for seed in config.get("seeds", [0]):
        split_path = os.path.join(args.run_dir, f"seed-{seed}", "split.json")
        while args.wait and not os.path.exists(split_path):
            time.sleep(10)
        with open(split_path) as handle:
            split = json.load(handle)
        if split["rows"] != len(texts):
            sys.exit(f"seed {seed}: the run had {split['rows']} texts, this reader {len(texts)}")
        train, test = split["train"], split["test"]

        def fine_tune(torch_seed):
            """PyTorch's test accuracy and training seconds with this torch seed."""
            torch.manual_seed(torch_seed)
            overrides = {}
            if recipe["dropout"] is not None:
                p = recipe["dropout"]
                overrides = {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p,
                             "classifier_dropout": p}
            model = BertForSequenceClassification.from_pretrained(
                model_dir, num_labels=len(classes), **overrides)
            trace = {
                "seed": seed, "torch_seed": torch_seed, "recipe": recipe,
                "train_ids": [encoded[i] for i in train],
                "train_labels": [labels[i] for i in train],
                "test_ids": [encoded[i] for i in test],
                "test_labels": [labels[i] for i in test],
                "initial_classifier": {
                    "weight": model.classifier.weight.detach().tolist(),
                    "bias": model.classifier.bias.detach().tolist(),
                },
                "orders": [], "losses": [], "test_predictions": [],
            }
            mean_pooling = recipe["pooling"] == "mean"
            optimizer = torch.optim.AdamW(
                model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"],
                betas=(0.9, 0.999), eps=1e-8,
            )
            steps_per_epoch = math.ceil(len(train) / recipe["batch_size"])
            total = steps_per_epoch * recipe["epochs"]
            warmup = math.ceil(recipe["warmup_ratio"] * total)
            schedule = get_linear_schedule_with_warmup(optimizer, warmup, total)
            generator = torch.Generator().manual_seed(torch_seed)

            def batch(indices):
                ids = [encoded[i] for i in indices]
                longest = max(len(s) for s in ids)
                input_ids = torch.tensor([s + [0] * (longest - len(s)) for s in ids])
                mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in ids])
                return input_ids, mask

            def logits_of(input_ids, mask):
                if not mean_pooling:
                    return model(input_ids=input_ids, attention_mask=mask).logits
                hidden = model.bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).float()
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                return model.classifier(model.dropout(pooled))

            started = time.time()
            model.train()
            for _ in range(recipe["epochs"]):
                order = torch.randperm(len(train), generator=generator).tolist()
                trace["orders"].append(order)
                for start in range(0, len(order), recipe["batch_size"]):
                    chunk = [train[k] for k in order[start:start + recipe["batch_size"]]]
                    input_ids, mask = batch(chunk)
                    target = torch.tensor([labels[i] for i in chunk])
                    loss = torch.nn.functional.cross_entropy(logits_of(input_ids, mask), target)
                    trace["losses"].append(loss.item())
                    loss.backward()
                    if recipe["max_grad_norm"] > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["max_grad_norm"])
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad()
            seconds = time.time() - started
            model.eval()
            correct = 0
            with torch.no_grad():
                for start in range(0, len(test), 64):
                    chunk = test[start:start + 64]
                    input_ids, mask = batch(chunk)
                    predicted = logits_of(input_ids, mask).argmax(-1).tolist()
                    trace["test_predictions"].extend(predicted)
                    correct += sum(int(p == labels[i]) for p, i in zip(predicted, chunk))
            trace["accuracy"] = correct / len(test)
            if args.trace:
                os.makedirs(args.trace, exist_ok=True)
                name = os.path.join(args.trace, f"seed-{seed}-torch-{torch_seed}.json")
                with open(name, "w") as handle:
                    json.dump(trace, handle)
            return correct / len(test), seconds

        accuracy, seconds = fine_tune(seed)
        for k in range(args.repeats):
            torch_seed = seed + 1000 * k
            value = accuracy if k == 0 else fine_tune(torch_seed)[0]
            repeats.append({"seed": seed, "torch_seed": torch_seed, "pytorch": value})
            print(f"seed {seed}, torch seed {torch_seed}: pytorch {100 * value:.2f}%", flush=True)
        apprentice = ours(seed)
        rows.append({"seed": seed, "pytorch": accuracy,
                     "pytorch_train_s": seconds, "train": len(train), "test": len(test)})
        print(f"seed {seed}: pytorch {100 * accuracy:.2f}%  apprentice {100 * apprentice:.2f}%  "
              f"({len(train)} training texts, {len(test)} test texts, {seconds:.0f} s)", flush=True)

    for row in rows:
        row["apprentice"] = ours(row["seed"])

    def summary(key):
        # A seed whose apprentice record is missing (the run not finished) counts for neither.
        values = [row[key] for row in rows if not math.isnan(row[key])]
        if not values:
            return float("nan"), float("nan")
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.mean(values), std

    for key in ("pytorch", "apprentice"):
        mean, std = summary(key)
        print(f"{key:>10}: {100 * mean:.2f} +- {100 * std:.2f} %")
    difference = summary("apprentice")[0] - summary("pytorch")[0]
    print(f"apprentice - pytorch: {100 * difference:+.2f} points")
    if args.repeats > 1:
        values = [r["pytorch"] for r in repeats]
        print(f"pytorch over {len(values)} fine-tunings: {100 * statistics.mean(values):.2f} +- "
              f"{100 * statistics.stdev(values):.2f} %")
    if args.out:
        document = {
            "run": os.path.basename(os.path.normpath(args.run_dir)),
            "recipe": recipe,
            "threads": args.threads,
            "torch": torch.__version__,
            "seeds": [{k: v for k, v in row.items() if k != "apprentice"} for row in rows],
            "repeats": repeats,
            "difference_points": 100 * difference,
        }
        with open(args.out, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()
