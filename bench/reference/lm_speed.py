#!/usr/bin/env python3
"""PyTorch reference for the apprentice example `lm_speed`: the same teacher scoring and the
same student training step on the same token ids, batch sizes and threads.

Reads WORK/ids.json and WORK/teacher-logits.safetensors that `lm_speed --out WORK` wrote.

Teacher scoring: the GGUF file loaded by transformers (AutoModelForCausalLM with gguf_file=,
which dequantises every tensor to float32, as ../shared/data/smollm2-135m-instruct/
make-reference.py does), float32, CPU, torch.inference_mode; the sequences `score_batch` at a
time, in file order, each batch right-padded with id 0 to its longest sequence and run without
an attention mask (causal attention: padding changes no real position), as apprentice does;
the logits of every position are computed. One untimed warm-up batch, then whole passes until
--budget seconds have passed. Tokens counted: every real (unpadded) token.

Student training step: LlamaForCausalLM of the shape in ids.json (tied embeddings, the
teacher's vocabulary, rotary base and RMSNorm epsilon), `train_batch` sequences per step, step
i taking sequences i*batch.. (wrapping around); per step the batch (inputs = every token but the
last, targets = every token but the first, right-padded), the teacher's dense log-probabilities
rebuilt from the top-k cache (kept tokens exact, the remaining mass spread evenly over the
others, padded positions zero), the student's forward, the forward KL(teacher || student) at
temperature 1 averaged over real positions, backward, AdamW (torch.optim.AdamW, betas 0.9 /
0.999, eps 1e-8) at the configured rate and weight decay. Two untimed warm-up steps, then steps
until --budget seconds have passed (at least 3). Tokens counted: every real target.

Exit status: 0 on success, 2 on bad arguments, 3 when torch or transformers is missing.
"""

import argparse
import json
import math
import os
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", help="the teacher's GGUF file")
    parser.add_argument("work", help="the folder lm_speed --out wrote")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        import torch
        import transformers
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
    except ImportError as error:
        print(f"error: {error}; the reference needs torch, transformers, gguf and safetensors", file=sys.stderr)
        sys.exit(3)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    setup = json.load(open(os.path.join(args.work, "ids.json")))
    sequences = setup["sequences"]
    folder, name = os.path.split(os.path.abspath(args.gguf))

    teacher = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()

    def padded(batch, drop_last=False):
        rows = [s[:-1] if drop_last else s for s in batch]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for row, sequence in enumerate(rows):
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        return ids

    score_batch = setup["score_batch"]
    batches = [sequences[i : i + score_batch] for i in range(0, len(sequences), score_batch)]
    tokens_per_pass = sum(len(s) for s in sequences)
    with torch.inference_mode():
        teacher(input_ids=padded(batches[0])).logits
        scored, scoring_seconds, passes = 0, 0.0, 0
        while passes == 0 or scoring_seconds < args.budget:
            started = time.perf_counter()
            for batch in batches:
                logits = teacher(input_ids=padded(batch)).logits
                del logits
            scoring_seconds += time.perf_counter() - started
            scored += tokens_per_pass
            passes += 1
    scoring = scored / scoring_seconds
    print(f"PyTorch teacher scoring, batch {score_batch}: {scoring:.1f} tokens/s ({scored} tokens in {scoring_seconds:.1f} s)")
    del teacher

    shape = setup["student"]
    student = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=shape["vocab_size"],
            hidden_size=shape["hidden"],
            num_hidden_layers=shape["layers"],
            num_attention_heads=shape["heads"],
            num_key_value_heads=shape["kv_heads"],
            intermediate_size=shape["ffn"],
            rope_theta=shape["rope_theta"],
            rms_norm_eps=shape["rms_eps"],
            max_position_embeddings=shape["max_len"],
            tie_word_embeddings=True,
            hidden_act="silu",
        )
    ).float().train()
    parameters = sum(p.numel() for p in student.parameters())
    optimizer_settings = setup["optimizer"]
    if optimizer_settings["kind"] != "adamw":
        print(f"error: the reference implements adamw, not {optimizer_settings['kind']}", file=sys.stderr)
        sys.exit(2)
    optimizer = torch.optim.AdamW(
        student.parameters(),
        lr=optimizer_settings["lr"],
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=optimizer_settings["weight_decay"],
    )
    cache = load_file(os.path.join(args.work, "teacher-logits.safetensors"))
    offsets = cache["offsets"].tolist()
    kept_ids = cache["indices"].long()
    kept_log_probs = cache["log_probs"]
    log_rest = cache["log_rest"]
    vocab, k = shape["vocab_size"], setup["top_k"]
    tail = log_rest - math.log(max(vocab - k, 1))
    train_batch = setup["train_batch"]

    def step(index):
        chosen = [(index * train_batch + i) % len(sequences) for i in range(train_batch)]
        batch = [sequences[i] for i in chosen]
        inputs = padded(batch, drop_last=True)
        rows, width = inputs.shape
        targets = torch.zeros((rows, width), dtype=torch.long)
        mask = torch.zeros((rows, width))
        dense = torch.zeros((rows, width, vocab))
        for row, (i, sequence) in enumerate(zip(chosen, batch)):
            n = len(sequence) - 1
            targets[row, :n] = torch.tensor(sequence[1:], dtype=torch.long)
            mask[row, :n] = 1.0
            positions = slice(offsets[i], offsets[i] + n)
            dense[row, :n] = tail[positions].unsqueeze(1).expand(n, vocab)
            dense[row, :n].scatter_(1, kept_ids[positions], kept_log_probs[positions])
        logits = student(input_ids=inputs).logits
        log_q = torch.log_softmax(logits, dim=-1)
        log_p = torch.log_softmax(dense, dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        loss = (kl * mask).sum() / mask.sum().clamp(min=1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"error: the training loss is {value}")
        return int(mask.sum().item())

    index = 0
    for _ in range(2):
        step(index)
        index += 1
    steps, trained, seconds = 0, 0, 0.0
    while steps < 3 or seconds < args.budget:
        started = time.perf_counter()
        tokens = step(index)
        seconds += time.perf_counter() - started
        trained += tokens
        steps += 1
        index += 1
    training = trained / seconds
    print(f"PyTorch student training, batch {train_batch}: {training:.1f} tokens/s ({steps} steps, {trained} tokens in {seconds:.1f} s)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "engine": f"torch {torch.__version__}, transformers {transformers.__version__}",
                    "threads": threads,
                    "sequences": len(sequences),
                    "teacher_scoring": {
                        "batch": score_batch,
                        "passes": passes,
                        "tokens": scored,
                        "seconds": scoring_seconds,
                        "tokens_per_s": scoring,
                    },
                    "student_training": {
                        "batch": train_batch,
                        "parameters": parameters,
                        "steps": steps,
                        "tokens": trained,
                        "seconds": seconds,
                        "tokens_per_s": training,
                    },
                },
                out,
                indent=2,
            )
            out.write("\n")


if __name__ == "__main__":
    main()
