#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, for the BERT teacher's tests.

Reproduces `reference-embeddings.json` of the model folder (APPRENTICE_SHARED_DATA, by default
`../shared/data/all-MiniLM-L6-v2`), which crates/apprentice/tests/bert_reference.rs holds the
Rust encoder against. The file was first made with sentence-transformers
(`SentenceTransformer(folder).encode(sentences)`, CPU, float32); that model's pipeline, as its
`modules.json` lists it, is BERT, then mean pooling over the attention mask, then L2
normalisation, with sequences cut at `max_seq_length` = 256 word pieces. This script runs the
same pipeline with plain `transformers` (no sentence-transformers needed):

    tokens = tokenizer(text, truncation=True, max_length=256)
    hidden = AutoModel(folder)(**tokens).last_hidden_state          # float32, CPU
    pooled = sum(hidden * mask) / max(sum(mask), 1e-9)
    embedding = pooled / max(|pooled|, 1e-12)

rounded to 7 decimals as in the committed file.

Usage, from the repository root:

    python3 bench/reference/make_bert_reference.py [MODEL_DIR]           # compare
    python3 bench/reference/make_bert_reference.py [MODEL_DIR] --write FILE

Without --write it prints, for each sentence, whether the word-piece ids are identical and the
largest absolute difference of the embedding from the committed file, and exits 1 when the ids
differ or any difference exceeds --tolerance (default 1e-6). With --write it writes a file in the
same format (same sentences). Needs torch and transformers (pip install torch transformers).
"""

import argparse
import json
import os
import sys

DEFAULT_DIR = os.path.join(
    os.environ.get("APPRENTICE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data")),
    "all-MiniLM-L6-v2",
)


def embed(folder, sentences, max_length):
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_grad_enabled(False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for text in sentences:
        tokens = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        normalised = torch.nn.functional.normalize(pooled, p=2, dim=1)
        out.append((tokens["input_ids"][0].tolist(), normalised[0].tolist()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--write", metavar="FILE", help="write the embeddings to FILE")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    args = parser.parse_args()
    committed_path = os.path.join(args.model_dir, "reference-embeddings.json")
    try:
        with open(committed_path) as handle:
            committed = json.load(handle)
    except (OSError, ValueError) as error:
        print(f"error: {committed_path}: {error}", file=sys.stderr)
        return 2
    sentences = [item["text"] for item in committed["items"]]
    try:
        computed = embed(args.model_dir, sentences, committed["max_seq_length"])
    except ImportError as error:
        print(f"error: {error.name} is not installed: pip install torch transformers", file=sys.stderr)
        return 3
    if args.write:
        document = dict(committed)
        document["produced_with"] = (
            "bench/reference/make_bert_reference.py: transformers AutoModel on CPU, float32; "
            "mean pooling over the attention mask, then L2 normalisation (the pipeline of modules.json)"
        )
        document["items"] = [
            {"text": text, "input_ids": ids, "embedding": [round(v, 7) for v in vector]}
            for text, (ids, vector) in zip(sentences, computed)
        ]
        with open(args.write, "w") as handle:
            json.dump(document, handle, ensure_ascii=False)
        print(f"wrote {args.write}")
        return 0
    worst = 0.0
    ok = True
    for item, (ids, vector) in zip(committed["items"], computed):
        same_ids = ids == item["input_ids"]
        difference = max(abs(a - b) for a, b in zip(vector, item["embedding"]))
        worst = max(worst, difference)
        ok &= same_ids and difference <= args.tolerance and len(vector) == len(item["embedding"])
        label = item["text"] if len(item["text"]) <= 40 else item["text"][:37] + "..."
        print(f"{label!r:45} ids {'identical' if same_ids else 'DIFFER'}  max |diff| {difference:.2e}")
    print(f"largest difference {worst:.2e} (tolerance {args.tolerance:g}): {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
