#!/usr/bin/env python3
"""PyTorch reference for the apprentice example `bert_speed`: the same BERT sentence encoder on
the same token ids, batch sizes and threads.

Reads the documents' word-piece ids that `bert_speed --ids-out FILE` wrote, and runs the model
folder through transformers' BertModel (float32, CPU, torch.inference_mode), then mean pooling
over the attention mask and L2 normalisation, as sentence-transformers does. Like
sentence-transformers' encode (and apprentice), documents are sorted by length, cut into
batches, and each batch is padded to its own longest document.

Timing: one untimed warm-up batch (the longest), then the batches in order, cycling, until
--budget seconds have passed and every batch ran at least once. Prints one line per batch size
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
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "engine": f"torch {torch.__version__}",
                    "threads": threads,
                    "documents": len(sequences),
                    "results": results,
                },
                out,
                indent=2,
            )


if __name__ == "__main__":
    main()
