#!/usr/bin/env python3
"""Reference empirical NTK with torch.func, to check and time apprentice's.

Reads a kernel file written by `apprentice complexity --dump-kernel FILE` (the student's
normalised inputs, apprentice's kernel and the path of the student's checkpoint), rebuilds the
student in PyTorch from that apprentice checkpoint (MLP or CNN, batch norm in evaluation mode),
computes the empirical NTK of its logits by the Jacobian-contraction method of the PyTorch
"Neural Tangent Kernels" tutorial (torch.func.jacrev of a functional_call, vmapped over the
examples, then one einsum per parameter tensor), and prints:

- the relative Frobenius difference between the two kernels, and whether it is within 1e-4;
- both computation times and their ratio (median of --repeats runs after one warm-up).

The tutorial contracts the Jacobians of two input batches; here both batches are the same
inputs, so the Jacobian is computed once and contracted with itself, which only helps torch.

Kernels: `trace` is apprentice's n x n trace kernel (1/C) sum_c <grad f_c(x_i), grad f_c(x_j)>,
the tutorial's `compute='trace'` divided by C; `block` is the full nC x nC kernel, rows ordered
example-major (i*C + c), the tutorial's `compute='full'` reordered.

With --save FILE, torch's kernel is written in the same safetensors layout (used for the test
fixture in crates/apprentice/tests/fixtures/complexity/).

Exit status: 0 when the kernels agree to --tolerance, 1 when they do not, 2 on bad input,
3 when torch (or numpy, safetensors) is not installed.
"""

import argparse
import json
import os
import statistics
import sys
import time

METADATA_KEY = "apprentice-ntk"
CHECKPOINT_KEY = "apprentice"


def import_torch():
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import torch
    except ImportError as error:
        print(
            f"error: {error.name or 'a module'} is not installed; the reference needs PyTorch: "
            "pip install torch safetensors numpy",
            file=sys.stderr,
        )
        sys.exit(3)
    return torch


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_metadata(path, key):
    """The JSON metadata entry `key` of a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(path, "np") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises several kinds
        fail(f"{path}: not a safetensors file ({error})")
    if key not in metadata:
        fail(f"{path}: no {key!r} metadata entry")
    return json.loads(metadata[key])


def build_network(torch, checkpoint, dtype):
    """The apprentice network of `checkpoint` as a torch module in evaluation mode."""
    from safetensors.torch import load_file

    nn = torch.nn
    functional = nn.functional
    meta = read_metadata(checkpoint, CHECKPOINT_KEY)
    spec = meta["spec"]
    tensors = load_file(checkpoint)
    activation = {
        "relu": functional.relu,
        "gelu": functional.gelu,  # exact erf form, as apprentice
        "tanh": torch.tanh,
        "leaky-relu": lambda x: functional.leaky_relu(x, 0.01),
    }[spec.get("activation", "relu")]
    shape = meta["input_shape"]

    def take(name):
        if name not in tensors:
            fail(f"{checkpoint}: no tensor {name!r}")
        return tensors[name].to(dtype)

    class Block(nn.Module):
        """conv 'same' -> batch norm (running statistics) -> activation -> max-pool 2x2."""

        def __init__(self, prefix, pool):
            super().__init__()
            weight = take(f"{prefix}.weight")
            self.padding = weight.shape[-1] // 2
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(take(f"{prefix}.bias"))
            self.norm = None
            if f"{prefix}.norm.gamma" in tensors:
                self.norm = nn.BatchNorm2d(weight.shape[0], eps=1e-5).to(dtype)
                self.norm.weight = nn.Parameter(take(f"{prefix}.norm.gamma"))
                self.norm.bias = nn.Parameter(take(f"{prefix}.norm.beta"))
                self.norm.running_mean.copy_(take(f"{prefix}.norm.running_mean"))
                self.norm.running_var.copy_(take(f"{prefix}.norm.running_var"))
            self.pool = pool

        def forward(self, x):
            x = functional.conv2d(x, self.weight, self.bias, padding=self.padding)
            if self.norm is not None:
                x = self.norm(x)
            x = activation(x)
            return functional.max_pool2d(x, 2) if self.pool else x

    class Dense(nn.Module):
        """y = x W + b with W stored [inputs, outputs], as apprentice stores it."""

        def __init__(self, prefix):
            super().__init__()
            self.weight = nn.Parameter(take(f"{prefix}.weight"))
            self.bias = nn.Parameter(take(f"{prefix}.bias"))

        def forward(self, x):
            return x @ self.weight + self.bias

    class Network(nn.Module):
        """apprentice's Network::forward without dropout: blocks, flatten, dense layers."""

        def __init__(self):
            super().__init__()
            height, width = shape["height"], shape["width"]
            blocks = []
            if spec["kind"] == "cnn":
                for index, _ in enumerate(spec["channels"]):
                    pool = spec.get("pool", True) and height >= 2 and width >= 2
                    blocks.append(Block(f"blocks.{index}", pool))
                    if pool:
                        height, width = height // 2, width // 2
            self.blocks = nn.ModuleList(blocks)
            count = 0
            while f"dense.{count}.weight" in tensors:
                count += 1
            if count == 0:
                fail(f"{checkpoint}: no dense layers (dense.0.weight) in it")
            self.dense = nn.ModuleList(Dense(f"dense.{i}") for i in range(count))

        def forward(self, x):
            if len(self.blocks) > 0:
                x = x.reshape(x.shape[0], shape["channels"], shape["height"], shape["width"])
                for block in self.blocks:
                    x = block(x)
                x = x.flatten(1)
            for index, layer in enumerate(self.dense):
                x = layer(x)
                if index + 1 < len(self.dense):
                    x = activation(x)
            return x

    return Network().eval(), meta


def torch_ntk(torch, net, inputs, kind):
    """The tutorial's empirical_ntk_jacobian_contraction with x1 = x2 = inputs."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}

    def fnet_single(params, x):
        return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(fnet_single), (None, 0))(params, inputs)
    jac = [j.flatten(2) for j in jac.values()]  # each [n, C, values of that parameter]
    if kind == "trace":
        result = torch.stack([torch.einsum("Naf,Maf->NM", j, j) for j in jac]).sum(0)
        return result / jac[0].shape[1]
    result = torch.stack([torch.einsum("Naf,Mbf->NMab", j, j) for j in jac]).sum(0)
    n, _, c, _ = result.shape
    return result.permute(0, 2, 1, 3).reshape(n * c, n * c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", help="kernel file from `apprentice complexity --dump-kernel`")
    parser.add_argument("--checkpoint", help="the student's checkpoint (default: the one the file names)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="torch precision (float32, as in the tutorial)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative Frobenius difference")
    parser.add_argument("--save", help="write torch's kernel to this file, in the same layout")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    torch = import_torch()
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(max(1, args.threads))
    dtype = getattr(torch, args.dtype)
    if not os.path.isfile(args.dump):
        fail(f"{args.dump}: no such file")
    info = read_metadata(args.dump, METADATA_KEY)
    tensors = load_file(args.dump)
    if "inputs" not in tensors or "kernel" not in tensors:
        fail(f"{args.dump}: expected tensors 'inputs' and 'kernel'")
    checkpoint = args.checkpoint or info.get("checkpoint")
    if not checkpoint or not os.path.isfile(checkpoint):
        fail(f"{args.dump}: the student checkpoint {checkpoint!r} is missing; pass --checkpoint")
    net, _ = build_network(torch, checkpoint, dtype)
    inputs = tensors["inputs"].to(dtype)
    ours = tensors["kernel"].to(torch.float64)
    kind = info["kind"]

    times = []
    kernel = None
    for run in range(args.repeats + 1):
        started = time.perf_counter()
        kernel = torch_ntk(torch, net, inputs, kind)
        elapsed = time.perf_counter() - started
        if run > 0:  # the first run pays for torch's lazy initialisation
            times.append(elapsed)
    reference = kernel.to(torch.float64)
    if reference.shape != ours.shape:
        fail(f"{args.dump}: our kernel is {tuple(ours.shape)}, torch's {tuple(reference.shape)}")
    difference = (torch.linalg.norm(ours - reference) / torch.linalg.norm(reference)).item()
    torch_seconds = statistics.median(times)
    ours_seconds = info.get("seconds")
    result = {
        "examples": info["examples"],
        "outputs": info["outputs"],
        "kind": kind,
        "checkpoint": checkpoint,
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "torch_version": torch.__version__,
        "relative_frobenius_difference": difference,
        "within_tolerance": difference <= args.tolerance,
        "torch_seconds": torch_seconds,
        "apprentice_seconds": ours_seconds,
        "speedup": torch_seconds / ours_seconds if ours_seconds else None,
    }
    if args.save:
        # No timing in the file, so that rerunning the fixture script reproduces it.
        saved = dict(info, computed_by="torch.func", seconds=None, checkpoint=checkpoint)
        save_file(
            {"inputs": tensors["inputs"], "kernel": reference.contiguous()},
            args.save,
            metadata={METADATA_KEY: json.dumps(saved)},
        )
        os.chmod(args.save, 0o644)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"kernel      {kind}, {info['examples']} inputs x {info['outputs']} outputs, student {checkpoint}")
        verdict = "within" if result["within_tolerance"] else "NOT within"
        print(f"values      relative Frobenius difference {difference:.3e} ({verdict} {args.tolerance:g})")
        print(f"torch.func  {torch_seconds:.4f} s (torch {torch.__version__}, {args.dtype}, "
              f"{torch.get_num_threads()} threads, median of {args.repeats})")
        if ours_seconds:
            print(f"apprentice  {ours_seconds:.4f} s (median of 3, one thread)")
            print(f"speed-up    {result['speedup']:.1f}x")
    sys.exit(0 if result["within_tolerance"] else 1)


if __name__ == "__main__":
    main()
