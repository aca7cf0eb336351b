#!/usr/bin/env python3
"""PyTorch reference for the apprentice example `bert_speed`: the same BERT sentence encoder on
the same token ids, batch sizes and threads.

Reads the documents' word-piece ids that `bert_speed --ids-out FILE` wrote, and runs the model
folder through transformers' BertModel (float32, CPU, torch.inference_mode), then mean pooling
over the attention mask and L2 normalisation, as sentence-transformers does. Like
sentence-transformers' encode (and apprentice), documents are sorted by length, cut into
batches, and each batch is padded to its own longest document.

Timing: one untimed warm-up batch (the longest), then the batches in order, cycling, until
--budget seconds have passed and every batch ran at least once.

When the ids file has a "finetune" entry (`bert_speed --finetune-steps N`), it also times N
steps of fine-tuning BertForSequenceClassification from the same folder on the same
sequences (all of one length), as apprentice's `text::finetune` does: train mode (the model's
dropout), cross-entropy, backward, clipping of the global gradient norm at 1, AdamW (lr 1e-4,
weight decay 0.01 on every parameter), after one untimed step. Prints one line per batch size
and, with --json FILE, writes them in the layout of `bert_speed --json`.

Exit status: 0 on success, 2 on bad arguments, 3 when torch or transformers is missing.
"""

import argparse
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Hugging Face model folder (config.json, model.safetensors)")
    parser.add_argument("ids", help="JSON file {\"sequences\": [[id, ...], ...]}")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        import torch
        from transformers import BertModel
    except ImportError as error:
        print(f"error: {error}; the reference needs torch and transformers", file=sys.stderr)
        sys.exit(3)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    model = BertModel.from_pretrained(args.model, torch_dtype=torch.float32, add_pooling_layer=False)
    model.eval()
    sequences = json.load(open(args.ids))["sequences"]
    ordered = sorted(sequences, key=len)
    pad_id = model.config.pad_token_id or 0

    def embed(batch):
        length = max(len(s) for s in batch)
        ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            mask[row, : len(sequence)] = 1
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    results = []
    with torch.inference_mode():
        for batch_size in [int(b) for b in args.batches.split(",")]:
            batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
            embed(batches[-1])
            started = time.perf_counter()
            done = 0
            index = 0
            while index < len(batches) or time.perf_counter() - started < args.budget:
                batch = batches[index % len(batches)]
                embed(batch)
                done += len(batch)
                index += 1
            seconds = time.perf_counter() - started
            rate = done / seconds
            print(f"PyTorch batch {batch_size:>3}: {rate:.2f} sentences/s ({done} sentences in {seconds:.1f} s)")
            results.append({"batch_size": batch_size, "sentences_per_s": rate})
    finetune = None
    spec = json.load(open(args.ids)).get("finetune") or {}
    if spec.get("steps"):
        finetune = finetune_speed(args.model, spec, torch)
        print(f"PyTorch fine-tuning: {finetune['steps_per_s']:.3f} steps/s ({spec['steps']} steps "
              f"of {spec['batch_size']} x {len(spec['sequences'][0])} word pieces)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "engine": f"torch {torch.__version__}",
                    "threads": threads,
                    "documents": len(sequences),
                    "results": results,
                    "finetune": finetune,
                },
                out,
                indent=2,
            )


def finetune_speed(model_dir, spec, torch):
    """Steps per second of fine-tuning on spec's sequences, spec's batch size at a time."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    batch = spec["batch_size"]
    texts = spec["sequences"]
    batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]

    def step(rows, first):
        ids = torch.tensor(rows, dtype=torch.long)
        mask = torch.ones_like(ids)
        target = torch.tensor([(first + k) % 2 for k in range(len(rows))])
        loss = torch.nn.functional.cross_entropy(
            model(input_ids=ids, attention_mask=mask).logits, target
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0], 0)
    started = time.perf_counter()
    for index, rows in enumerate(batches):
        step(rows, index * batch)
    seconds = time.perf_counter() - started
    return {
        "steps": len(batches),
        "batch_size": batch,
        "length": len(texts[0]),
        "steps_per_s": len(batches) / seconds,
    }


if __name__ == "__main__":
    main()
