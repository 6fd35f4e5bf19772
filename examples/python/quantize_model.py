#!/usr/bin/env python3
"""Quantize a PyTorch model's linears sequentially with vqlib, GPTQ-style, and measure perplexity.

The model is web-char (tests/data/models/web-char): a 3.2M-parameter character-level transformer
trained on the World English Bible, 4 pre-LayerNorm blocks with 6 linears each. The script

1. builds the model in PyTorch and loads its weights (vqlib.read_safetensors),
2. measures the fp32 test perplexity by the model's protocol,
3. quantizes block by block, as GPTQ does: forward hooks feed each linear's inputs into a
   vqlib.HessianAccumulator while calibration windows run through the model whose earlier
   blocks are already quantized; q/k/v read the same input and share one Hessian (and, for
   GPTQ, one vqlib.prepare_hessian); within a block the linears go in GPTQ's "true sequential"
   order (q/k/v, then o, then up, then down), each group's Hessian collected after the previous
   group was quantized,
4. replaces each weight by the quantized layer's Q and measures the quantized perplexity,
5. prints a table per linear (bits per weight, proxy loss, seconds) and the totals.

    python3 examples/python/quantize_model.py                      # GPTQ w4 g128
    python3 examples/python/quantize_model.py --method gptvq --bits 2
    python3 examples/python/quantize_model.py --check              # what ctest runs

Needs the vqlib module on PYTHONPATH (build/python/python after `cmake --workflow --preset
python`), NumPy and PyTorch (Debian: python3-numpy, python3-torch).
"""
import argparse
import json
import lzma
import math
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import vqlib

DEFAULT_MODEL = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "models" / "web-char"
LINEARS = ("q", "k", "v", "o", "up", "down")
# GPTQ's true-sequential groups: linears of one group read the same input.
SEQUENTIAL_GROUPS = (("q", "k", "v"), ("o",), ("up",), ("down",))


class Block(torch.nn.Module):
    def __init__(self, d, heads, ff, eps):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.ln1 = torch.nn.LayerNorm(d, eps=eps)
        self.ln2 = torch.nn.LayerNorm(d, eps=eps)
        for name, (out, inp) in {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d),
                                 "up": (ff, d), "down": (d, ff)}.items():
            setattr(self, name, torch.nn.Linear(inp, out, bias=False))

    def forward(self, x):
        B, T, D = x.shape
        h = self.heads
        y = self.ln1(x)
        split = lambda t: t.view(B, T, h, D // h).transpose(1, 2)
        q, k, v = split(self.q(y)), split(self.k(y)), split(self.v(y))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D // h)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        a = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class WebChar(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d"]
        self.emb = torch.nn.Embedding(cfg["vocab"], d)
        self.pos = torch.nn.Parameter(torch.zeros(cfg["ctx"], d))
        self.blocks = torch.nn.ModuleList(
            Block(d, cfg["h"], cfg["ff"], cfg["layer_norm_eps"]) for _ in range(cfg["layers"]))
        self.lnf = torch.nn.LayerNorm(d, eps=cfg["layer_norm_eps"])
        self.head = torch.nn.Linear(d, cfg["vocab"], bias=False)

    def embed(self, ids):
        return self.emb(ids) + self.pos[: ids.shape[1]]

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.lnf(x))


def load_model(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    model = WebChar(cfg)
    tensors, _ = vqlib.read_safetensors(str(model_dir / "model.safetensors"))
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return cfg, model


def load_corpus(model_dir, cfg):
    text = lzma.decompress((model_dir / "corpus.txt.xz").read_bytes()).decode("utf-8")
    index = {chr(c): i for i, c in enumerate(cfg["vocab_codepoints"])}
    ids = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    split = int(0.9 * len(ids))
    return ids[:split], ids[split:]


@torch.no_grad()
def perplexity(model, test, ctx, chars, batch=64):
    data = test[:chars]
    starts = list(range(0, len(data) - ctx - 1, ctx))
    total, count = 0.0, 0
    for b in range(0, len(starts), batch):
        s = starts[b: b + batch]
        x = torch.stack([data[j: j + ctx] for j in s])
        y = torch.stack([data[j + 1: j + ctx + 1] for j in s])
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    return math.exp(total / count)


def method_config(args):
    """The vqlib configuration for --method/--bits (a preset, as in C++)."""
    if args.method == "gptq":
        grid = vqlib.IntGrid(args.bits, symmetric=False)
        config = vqlib.GptqConfig(grid, groups=vqlib.GroupOptions(size=args.group_size))
        config.hessian.act_order = args.act_order
        config.groups.static_groups = args.act_order  # keeps g_idx implicit
        return config
    if args.method == "gptvq":
        return vqlib.gptvq_presets.best(2, args.bits, 2048)
    if args.method == "vptq":
        return vqlib.vptq_presets.rate(4, args.bits)
    if args.method == "pvq":
        return vqlib.pvq_presets.best(32, args.bits + 0.25)
    raise SystemExit(f"unknown method {args.method}")


def quantize(W, H, prepared, config, method):
    if method == "gptq":
        result = vqlib.gptq(W, prepared, config)  # the shared preparation of this input
        return result, vqlib.proxy_loss(W, result.Q, H)
    run = {"gptvq": vqlib.gptvq, "vptq": vqlib.vptq, "pvq": vqlib.pvq}[method]
    result = run(W, H, config)
    return result, result.proxy_loss


@torch.no_grad()
def quantize_sequentially(model, calibration, config, method):
    """GPTQ's sequential loop: each group's Hessian from the partly quantized model."""
    rows = []
    x = model.embed(calibration)  # the first block's inputs
    for i, block in enumerate(model.blocks):
        for group in SEQUENTIAL_GROUPS:
            first = getattr(block, group[0])
            acc = vqlib.HessianAccumulator(first.in_features)
            # The group's linears read the same input: one hook, one accumulator.
            hook = first.register_forward_pre_hook(
                lambda module, inputs: acc.add_rows(inputs[0].reshape(-1, inputs[0].shape[-1])))
            block(x)
            hook.remove()
            H = acc.finalize()
            prepared = vqlib.prepare_hessian(H, config.hessian) if method == "gptq" else None
            for name in group:
                linear = getattr(block, name)
                W = linear.weight.detach().numpy().copy()  # out x in, C order
                result, loss = quantize(W, H, prepared, config, method)
                zero = vqlib.proxy_loss(W, np.zeros_like(W), H)
                linear.weight.copy_(torch.from_numpy(np.array(result.Q)))
                rows.append((f"blocks.{i}.{name}", W.shape, result.bits_per_weight, loss,
                             loss / zero, result.seconds))
        x = block(x)  # the next block's inputs, through this quantized block
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--method", choices=("gptq", "gptvq", "vptq", "pvq"), default="gptq")
    parser.add_argument("--bits", type=int, default=4,
                        help="GPTQ: grid bits; GPTVQ/VPTQ: index bits per weight; PVQ: bpw - 0.25")
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--act-order", action="store_true", help="GPTQ act-order (static groups)")
    parser.add_argument("--calibration-windows", type=int, default=128)
    parser.add_argument("--eval-chars", type=int, default=None,
                        help="test characters for perplexity (default: the protocol's)")
    parser.add_argument("--threads", type=int, default=0, help="vqlib and torch threads (0: all)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless fp32 perplexity reproduces reference.json to 1e-4 "
                             "and GPTQ w4 g128 stays within 1%% of it")
    args = parser.parse_args()

    vqlib.set_num_threads(args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, model = load_model(args.model)
    reference = json.loads((args.model / "reference.json").read_text())
    train, test = load_corpus(args.model, cfg)
    ctx = cfg["ctx"]
    chars = args.eval_chars or reference["eval_chars"]

    t = time.perf_counter()
    fp32 = perplexity(model, test, ctx, chars)
    print(f"fp32 test perplexity {fp32:.6f} (reference {reference['fp32_test_perplexity']:.6f}, "
          f"{time.perf_counter() - t:.1f} s)")

    starts = reference["calibration_window_starts"][: args.calibration_windows]
    calibration = torch.stack([train[s: s + ctx] for s in starts])
    config = method_config(args)
    t = time.perf_counter()
    rows = quantize_sequentially(model, calibration, config, args.method)
    seconds = time.perf_counter() - t
    quantized = perplexity(model, test, ctx, chars)

    print(f"\n{'linear':<16} {'shape':>10} {'bpw':>7} {'proxy loss':>12} {'relative':>9} {'s':>6}")
    for name, shape, bpw, loss, rel, sec in rows:
        print(f"{name:<16} {shape[0]:>4}x{shape[1]:<5} {bpw:>7.3f} {loss:>12.5g} {rel:>9.2e} {sec:>6.2f}")
    weights = sum(s[0] * s[1] for _, s, *_ in rows)
    bpw = sum(s[0] * s[1] * b for _, s, b, *_ in rows) / weights
    print(f"\n{args.method} ({len(rows)} linears, {calibration.shape[0]} x {ctx} calibration "
          f"tokens): {bpw:.3f} bits per weight, {seconds:.1f} s; test perplexity "
          f"{quantized:.6f} (fp32 {fp32:.6f}, +{100 * (quantized / fp32 - 1):.2f}%)")

    if args.check:
        ok = True
        if args.eval_chars is None:
            rel = abs(fp32 / reference["fp32_test_perplexity"] - 1)
            if rel > 1e-4:
                print(f"CHECK FAILED: fp32 perplexity off by {rel:.2e} relative", file=sys.stderr)
                ok = False
        if args.method == "gptq" and args.bits == 4 and quantized > 1.01 * fp32:
            print("CHECK FAILED: GPTQ w4 perplexity more than 1% above fp32", file=sys.stderr)
            ok = False
        if not quantized < 1.5 * fp32:
            print("CHECK FAILED: quantized perplexity implausible", file=sys.stderr)
            ok = False
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
