"""An exported student language model in onnxruntime against the same checkpoint in transformers.

    python3 bench/reference/onnx_lm_check.py STUDENT.safetensors STUDENT.onnx CACHED.onnx \
        TEACHER.gguf TEXTS_CSV [--count 128] [--max-length 24] [--prompt "This movie is"] \
        [--new-tokens 16] [--threads 2] [--out FILE]

STUDENT.safetensors is a language-model run's student (`<run>/seed-N/<name>.safetensors`, its
description `<name>.json` beside it); STUDENT.onnx and CACHED.onnx are its exports by
`apprentice export STUDENT.safetensors --onnx STUDENT.onnx` and the same with `--kv-cache`.
The script builds transformers' LlamaForCausalLM from the checkpoint's own tensors (not from
the export: apprentice stores a projection as [inputs, outputs], PyTorch as [outputs,
inputs]). It tokenizes the first COUNT `fresh` or `rotten` snippets of TEXTS_CSV with the
teacher's tokenizer (read by transformers from TEACHER.gguf, no special tokens), cut at
MAX_LENGTH tokens as the run cut them, and runs them in batches of 32 through both sides:
the largest absolute difference of the next-token logits at every real position, and how
often the most likely next token is the same. Then both sides continue PROMPT greedily for
NEW_TOKENS tokens at batch 1, onnxruntime through the cached graph (the keys and values it
returns fed back), transformers through `generate` with its own cache; and the same from the
first 6 tokens of each of the first 16 snippets, counting the generated tokens on which the
two sides agree. Since a greedy continuation can agree by chance (an undertrained student
repeats one token), the logits of every cached step are also compared with one transformers
pass over the prompt and the generated tokens. Generation speed: every prompt once more on
each side, the sides taking turns, in tokens per second on THREADS threads. Scoring speed:
tokens per second of both sides on the batches of 32. OUT writes all of it, with the
machine, as a raw file.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
import torch
import transformers
from safetensors.numpy import load_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from check_inputs import machine, ort_session, read_texts

BATCH = 32
MORE_PROMPTS = 16
PROMPT_PIECES = 6


def reference_model(checkpoint):
    """LlamaForCausalLM with the checkpoint's weights, from the description beside it."""
    description = json.load(open(os.path.splitext(checkpoint)[0] + ".json"))
    config = description["config"]
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=config["vocab_size"], hidden_size=config["hidden"],
        intermediate_size=config["ffn"], num_hidden_layers=config["layers"],
        num_attention_heads=config["heads"], num_key_value_heads=config["kv_heads"],
        rope_theta=config["rope_theta"], rms_norm_eps=config["rms_eps"],
        max_position_embeddings=config["max_len"], tie_word_embeddings=config["tied"],
        attention_bias=False, mlp_bias=False, hidden_act="silu",
    )).eval()
    weights = load_file(checkpoint)
    state = {"model.embed_tokens.weight": weights["embed.weight"],
             "model.norm.weight": weights["norm.gamma"]}
    if not config["tied"]:
        state["lm_head.weight"] = weights["lm_head.weight"].T
    parts = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
             "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
             "down": "mlp.down_proj"}
    for i in range(config["layers"]):
        for ours, theirs in parts.items():
            state[f"model.layers.{i}.{theirs}.weight"] = weights[f"layers.{i}.{ours}.weight"].T
        state[f"model.layers.{i}.input_layernorm.weight"] = weights[f"layers.{i}.attn_norm.gamma"]
        state[f"model.layers.{i}.post_attention_layernorm.weight"] = \
            weights[f"layers.{i}.ffn_norm.gamma"]
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= ({"lm_head.weight"} if config["tied"] else set()), missing
    return description, model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("onnx")
    parser.add_argument("cached_onnx")
    parser.add_argument("teacher_gguf")
    parser.add_argument("texts")
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=24)
    parser.add_argument("--prompt", default="This movie is")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    plain = ort_session(args.onnx, args.threads)
    cached = ort_session(args.cached_onnx, args.threads)
    description, reference = reference_model(args.checkpoint)
    config = description["config"]
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(args.teacher_gguf)),
                                              gguf_file=os.path.basename(args.teacher_gguf))
    texts = read_texts(args.texts, args.count, categories=("fresh", "rotten"))
    sequences = [tokenizer(t, add_special_tokens=False)["input_ids"][:args.max_length]
                 for t in texts]
    sequences = [s for s in sequences if s]

    # Right-padded batches: the graph is causal, so padding never reaches a real position.
    batches = []
    for start in range(0, len(sequences), BATCH):
        part = sequences[start:start + BATCH]
        width = max(len(s) for s in part)
        ids = np.zeros((len(part), width), dtype=np.int64)
        real = np.zeros((len(part), width), dtype=bool)
        for row, s in enumerate(part):
            ids[row, :len(s)] = s
            real[row, :len(s)] = True
        batches.append((ids, real))

    def score_onnx(ids):
        return plain.run(None, {"input_ids": ids})[0]

    def score_torch(ids):
        with torch.no_grad():
            return reference(input_ids=torch.from_numpy(ids)).logits.numpy()

    gap, largest, agree, positions = 0.0, 0.0, 0, 0
    for ids, real in batches:
        a, b = score_onnx(ids)[real], score_torch(ids)[real]
        gap = max(gap, float(np.abs(a - b).max()))
        largest = max(largest, float(np.abs(b).max()))
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        positions += int(real.sum())

    scoring = {}
    for name, run in [("onnxruntime", score_onnx), ("transformers", score_torch)]:
        run(batches[0][0])
        begin = time.perf_counter()
        for ids, _ in batches:
            run(ids)
        scoring[name] = positions / (time.perf_counter() - begin)

    prompt = tokenizer(args.prompt, add_special_tokens=False)["input_ids"]
    head_dim = config["hidden"] // config["heads"]
    past_names = [i.name for i in cached.get_inputs() if i.name.startswith("past_")]
    present_names = [o.name for o in cached.get_outputs()][1:]

    def generate_onnx(prompt):
        past = {n: np.zeros((1, config["kv_heads"], 0, head_dim), dtype=np.float32)
                for n in past_names}
        new = np.array([prompt], dtype=np.int64)
        out, steps = [], []
        for _ in range(args.new_tokens):
            outputs = cached.run(None, {"input_ids": new, **past})
            steps.append(outputs[0][0])
            token = int(outputs[0][0, -1].argmax())
            out.append(token)
            past = {n.replace("present_", "past_"): v
                    for n, v in zip(present_names, outputs[1:])}
            new = np.array([[token]], dtype=np.int64)
        generate_onnx.logits = np.concatenate(steps)
        return out

    def cached_gap(prompt, tokens):
        """The cached graph's logits of every step against one transformers pass."""
        whole = score_torch(np.array([prompt + tokens[:-1]], dtype=np.int64))[0]
        return float(np.abs(generate_onnx.logits - whole).max())

    def generate_torch(prompt):
        with torch.no_grad():
            ids = reference.generate(torch.tensor([prompt]), max_new_tokens=args.new_tokens,
                                     min_new_tokens=args.new_tokens, do_sample=False,
                                     use_cache=True, pad_token_id=0)
        return ids[0, len(prompt):].tolist()

    generated = {"onnxruntime": generate_onnx(prompt), "transformers": generate_torch(prompt)}
    cached_gaps = [cached_gap(prompt, generated["onnxruntime"])]
    # More prompts: the first PROMPT_PIECES tokens of the first snippets.
    more = [s[:PROMPT_PIECES] for s in sequences[:MORE_PROMPTS] if len(s) > PROMPT_PIECES]
    continuations = []
    for p in more:
        ours = generate_onnx(p)
        cached_gaps.append(cached_gap(p, ours))
        continuations.append((ours, generate_torch(p)))
    same_tokens = sum(int(a == b) for x, y in continuations for a, b in zip(x, y))

    # Generation speed: every prompt once more on each side, the sides taking turns.
    elapsed = {"onnxruntime": 0.0, "transformers": 0.0}
    for p in [prompt] + more:
        for name, run in [("onnxruntime", generate_onnx), ("transformers", generate_torch)]:
            begin = time.perf_counter()
            run(p)
            elapsed[name] += time.perf_counter() - begin
    generation_speed = {k: (1 + len(more)) * args.new_tokens / v for k, v in elapsed.items()}

    result = {
        "benchmark": "bench/reference/onnx_lm_check.py",
        "student": description["name"],
        "objective": description["objective"],
        "seed": description["seed"],
        "onnx_bytes": os.path.getsize(args.onnx),
        "cached_onnx_bytes": os.path.getsize(args.cached_onnx),
        "checkpoint_bytes": os.path.getsize(args.checkpoint),
        "texts": len(sequences),
        "positions": positions,
        "max_length": args.max_length,
        "threads": args.threads,
        "max_abs_logit_difference": gap,
        "largest_abs_logit": largest,
        "next_tokens_agreeing": agree,
        "scoring_tokens_per_s": scoring,
        "scoring_onnxruntime_over_transformers": scoring["onnxruntime"] / scoring["transformers"],
        "prompt": args.prompt,
        "prompt_ids": prompt,
        "new_tokens": args.new_tokens,
        "generated_ids": generated,
        "generated_text": {k: tokenizer.decode(v) for k, v in generated.items()},
        "same_generation": generated["onnxruntime"] == generated["transformers"],
        "cached_max_abs_logit_difference": max(cached_gaps),
        "more_prompts": len(more),
        "more_prompts_tokens": len(more) * args.new_tokens,
        "more_prompts_same_tokens": same_tokens,
        "more_prompts_text": [tokenizer.decode(p) + " | " + tokenizer.decode(x)
                              for p, (x, _) in zip(more, continuations)],
        "generation_tokens_per_s": generation_speed,
        "generation_onnxruntime_over_transformers":
            generation_speed["onnxruntime"] / generation_speed["transformers"],
        "machine": machine(),
        "versions": {"onnxruntime": ort.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
