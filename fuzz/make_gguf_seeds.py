#!/usr/bin/env python3
"""Writes small valid GGUF files as seeds for the `gguf` fuzz target (needs the `gguf` package):
a tiny llama with a byte-level tokenizer and tensors in F32, F16, Q8_0, Q4_0 and Q4_1.
Run from fuzz/: python3 make_gguf_seeds.py"""
import numpy as np, gguf
from gguf import GGMLQuantizationType as Q

def write(path, with_tokenizer=True, arch="llama"):
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(1); w.add_context_length(16); w.add_embedding_length(32)
    w.add_feed_forward_length(32); w.add_head_count(2); w.add_head_count_kv(1)
    w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-5)
    if with_tokenizer:
        w.add_tokenizer_model("gpt2")
        w.add_token_list(["a", "b", "Ġ", "ab", "<|end|>"])
        w.add_token_merges(["a b"])
        w.add_token_types([1, 1, 1, 1, 3])
        w.add_bos_token_id(4); w.add_eos_token_id(4)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.normal(size=(5, 32)).astype(np.float32))
    w.add_tensor("half", rng.normal(size=(32,)).astype(np.float16))
    for name, ty in [("q8", Q.Q8_0), ("q40", Q.Q4_0), ("q41", Q.Q4_1)]:
        data = gguf.quants.quantize(rng.normal(size=(2, 32)).astype(np.float32), ty)
        w.add_tensor(name, data, raw_dtype=ty)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

write("corpus/gguf/tiny-llama.gguf")
write("corpus/gguf/no-tokenizer.gguf", with_tokenizer=False)
write("corpus/gguf/other-arch.gguf", arch="gpt2")
