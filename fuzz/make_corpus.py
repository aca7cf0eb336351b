#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/: small valid inputs
(and a few near-valid ones) from which libFuzzer mutates. Deterministic; rerun from the
repository root after a format changes:

    python3 fuzz/make_corpus.py

Seeds are taken from committed files where the repository has them (experiment files,
checkpoints, a results.json) and built here where it does not (IDX arrays, CSV text,
mid-training state manifests). Needs only python3.
"""

import gzip
import hashlib
import json
import os
import shutil
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def target(name):
    folder = os.path.join(CORPUS, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


def write(folder, name, data):
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def copy(folder, name, source):
    with open(os.path.join(ROOT, source), "rb") as handle:
        write(folder, name, handle.read())


def idx(type_code, dims, payload):
    header = struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return header + payload


def gzip_bytes(data):
    # mtime 0 keeps the output identical from run to run.
    return gzip.compress(data, mtime=0)


def idx_seeds():
    folder = target("idx")
    images = idx(0x08, [3, 2, 2], bytes(range(12)))
    labels = idx(0x08, [3], bytes([0, 1, 2]))
    write(folder, "images-u8", images)
    write(folder, "labels-u8", labels)
    write(folder, "images-u8.gz", gzip_bytes(images))
    write(folder, "truncated", images[:-3])


def csv_seeds():
    folder = target("csv")
    # The first byte chooses the label column and header setting (see fuzz_targets/csv.rs).
    write(folder, "label-last", b"\x00" + b"0.1,0.2,0\n0.3,0.4,1\n1.5,-2,2\n")
    write(folder, "label-first", b"\x01" + b"0,0.1,0.2\n1,0.3,0.4\n")
    write(folder, "label-index-1", b"\x02" + b"0.1,3,0.2\n0.3,1,0.4\n")
    write(folder, "header-name", b"\x03" + b"a,label,b\n1,0,2\n3,1,4\n")
    write(folder, "header-last", b"\x10" + b"x,y,class\n1e-3,2,0\n-4,5.5,1\n")


def config_seeds():
    folder = target("config")
    configs = os.path.join(ROOT, "configs")
    for name in sorted(os.listdir(configs)):
        with open(os.path.join(configs, name)) as handle:
            text = handle.read()
        # Continual and text experiments have readers of their own; these seeds are for the
        # experiment-file reader the target fuzzes.
        if name.endswith(".toml") and "[[stages]]" not in text and "[text]" not in text:
            copy(folder, name, os.path.join("configs", name))
    copy(folder, "tiny-cnn.toml", "crates/apprentice/tests/fixtures/complexity/tiny-cnn.toml")


def checkpoint_seeds():
    folder = target("checkpoint")
    copy(folder, "mlp.safetensors", "crates/apprentice/tests/fixtures/complexity/mlp.safetensors")
    copy(folder, "cnn.safetensors", "crates/apprentice/tests/fixtures/complexity/cnn.safetensors")


def results_seeds():
    folder = target("results")
    data = os.path.join(ROOT, "docs", "results", "data")
    for source in sorted(os.listdir(data)) if os.path.isdir(data) else []:
        if source.endswith("results.json"):
            copy(folder, source, os.path.join("docs", "results", "data", source))
    copy(folder, "fashion-mnist.json", "docs/examples/fashion-mnist/results.json")


def manifest(best):
    """A state manifest whose files are the ones fuzz_targets/run_state.rs writes."""

    def digest(name, data):
        return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    value = {
        "format_version": 1,
        "identity": "fuzz",
        "progress": {
            "epoch": 1,
            "step": 3,
            "global_step": 13,
            "loss_sum": 2.5,
            "loss_count": 3,
            "skipped_batches": 0,
            "train_loss": [1.25],
            "validation_accuracy": [0.5],
            "learning_rate": [0.001, 0.001],
            "best_accuracy": 0.5,
            "epochs_without_improvement": 0,
            "kept_validation_accuracy": 0.5,
            "stopped_early": False,
            "elapsed_s": 0.75,
            "probes": [{"epoch": 0, "values": [1.0, None]}],
        },
        "model": digest("model-000000001.safetensors", b"weights"),
        "optimizer": digest("optimizer-000000001.bin", b"moments"),
        "best": digest("model-000000001.safetensors", b"weights") if best else None,
    }
    return json.dumps(value, indent=1).encode()


def run_state_seeds():
    folder = target("run_state")
    write(folder, "valid", manifest(best=False))
    write(folder, "valid-with-best", manifest(best=True))
    write(folder, "bad-checksum", manifest(best=False).replace(b'"bytes": 7', b'"bytes": 8', 1))


def main():
    idx_seeds()
    csv_seeds()
    config_seeds()
    checkpoint_seeds()
    results_seeds()
    run_state_seeds()
    for name in sorted(os.listdir(CORPUS)):
        print(f"fuzz/corpus/{name}: {len(os.listdir(os.path.join(CORPUS, name)))} seeds")


if __name__ == "__main__":
    main()
