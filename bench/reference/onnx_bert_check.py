"""An exported BERT classifier in onnxruntime against the same model folder in transformers.

    python3 bench/reference/onnx_bert_check.py MODEL_DIR MODEL.onnx TEXTS_CSV \
        [--count 256] [--max-length 64] [--threads 2] [--out FILE]

MODEL_DIR is a `BertForSequenceClassification` folder (a text run's `<run>/seed-N/<model>.hf`)
and MODEL.onnx its export by `apprentice export MODEL_DIR --onnx MODEL.onnx`. The first COUNT
texts of TEXTS_CSV (column `text`, plain or .bz2) are tokenized with the folder's tokenizer,
truncated at MAX_LENGTH pieces as the run trained on them, and run in batches of 32 padded to
their longest text by both sides: the script reports the largest absolute difference of the
logits and how often the predicted classes agree. Then both sides classify the texts one at a
time on THREADS threads (after 5 warm-up texts): sentences per second, the ratio onnxruntime /
transformers. OUT writes all of it, with the machine, as a raw file.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
import torch
import transformers
from transformers import AutoTokenizer, BertForSequenceClassification

from check_inputs import machine, ort_session, read_texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("onnx")
    parser.add_argument("texts")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    session = ort_session(args.onnx, args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    reference = BertForSequenceClassification.from_pretrained(args.model_dir).eval()
    texts = read_texts(args.texts, args.count)

    def encode(batch):
        tokens = tokenizer(batch, truncation=True, max_length=args.max_length,
                           padding=True, return_tensors="np")
        return tokens["input_ids"].astype(np.int64), tokens["attention_mask"].astype(np.int64)

    def run_ort(ids, mask):
        return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def run_torch(ids, mask):
        with torch.no_grad():
            return reference(input_ids=torch.from_numpy(ids),
                             attention_mask=torch.from_numpy(mask)).logits.numpy()

    gap, agree = 0.0, 0
    for start in range(0, len(texts), 32):
        ids, mask = encode(texts[start:start + 32])
        a, b = run_ort(ids, mask), run_torch(ids, mask)
        gap = max(gap, float(np.abs(a - b).max()))
        agree += int((a.argmax(1) == b.argmax(1)).sum())

    singles = [encode([t]) for t in texts]
    speeds = {}
    for name, run in [("onnxruntime", run_ort), ("transformers", run_torch)]:
        for ids, mask in singles[:5]:
            run(ids, mask)
        begin = time.perf_counter()
        for ids, mask in singles:
            run(ids, mask)
        speeds[name] = len(singles) / (time.perf_counter() - begin)
    result = {
        "benchmark": "bench/reference/onnx_bert_check.py",
        "model": os.path.basename(os.path.normpath(args.model_dir)),
        "onnx_bytes": os.path.getsize(args.onnx),
        "texts": len(texts),
        "max_length": args.max_length,
        "threads": args.threads,
        "max_abs_logit_difference": gap,
        "predictions_agreeing": agree,
        "sentences_per_s_batch1": speeds,
        "onnxruntime_over_transformers": speeds["onnxruntime"] / speeds["transformers"],
        "machine": machine(),
        "versions": {"onnxruntime": ort.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
