"""What the ONNX check scripts share: the corpus's texts, onnxruntime sessions on a given number
of threads, and the machine's description."""
import bz2
import csv
import io
import os
import platform
import subprocess


def read_texts(path, count, categories=None):
    """The first `count` texts (column `text`) of a CSV file, plain or .bz2; with `categories`,
    only rows whose `category` is one of them."""
    handle = (io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", newline="")
              if path.endswith(".bz2") else open(path, encoding="utf-8", newline=""))
    texts = []
    with handle:
        for record in csv.DictReader(handle):
            if categories is None or record.get("category") in categories:
                texts.append(record["text"])
            if len(texts) >= count:
                break
    return texts


def machine():
    """The CPU model (from lscpu) and the number of cores."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(l.split(":", 1)[1].strip() for l in out.splitlines()
                     if l.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return f"{model}, {os.cpu_count()} cores"


def ort_session(path, threads):
    """An onnxruntime CPU session of the graph at `path` on `threads` threads (one inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
