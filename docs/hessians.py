#!/usr/bin/env python3
"""Hessians for vqlib-quantize: vqlib runs no model forward, so a user brings one Hessian per
linear input, H = 2/n * sum_t x_t x_t^T over n calibration tokens (GPTQ's definition).

  collect   run a Hugging Face causal LM on calibration text with forward hooks on every
            nn.Linear; write one <module>.safetensors per distinct input (q/k/v and gate/up share
            theirs), tensor "H" (float32), metadata "input_of" listing the weights it serves and
            "tokens". Needs torch, transformers, safetensors.

              python3 docs/hessians.py collect --model meta-llama/Llama-2-7b-hf \
                  --text calibration.txt --tokens 131072 --seqlen 2048 --out hessians/

  quip      convert Hessians in QuIP#'s per-layer layout (what VPTQ's offline pipeline reads:
            <layer>_qkv.pt, <layer>_o.pt, <layer>_up.pt, <layer>_down.pt, each a dict with the
            flattened upper triangle 'flatH', the mean 'mu', the size 'n' and the token count
            'ct') into the same files. QuIP# stores the covariance; the second moment the
            quantizer needs is flatH + mu mu^T (as QuIP#'s and VPTQ's quantizers rebuild it);
            vqlib's H is 2x that (GPTQ's scale; every method is invariant to the factor).
            Needs torch only.

              python3 docs/hessians.py quip --in quip_hessians/ --layers 32 --out hessians/

Then: vqlib-quantize --model <checkpoint> --hessians hessians/ --method gptq:w4g128 --out out/
"""
import argparse
import json
import os
import struct
import sys


def write_safetensors(path, name, matrix, metadata):
    """A one-tensor safetensors file (float32, C order), written atomically."""
    import numpy as np
    data = np.ascontiguousarray(matrix, dtype="<f4")
    header = {"__metadata__": metadata,
              name: {"dtype": "F32", "shape": list(data.shape), "data_offsets": [0, data.nbytes]}}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data.tobytes())
    os.replace(tmp, path)


def flat_to_sym(flat, n):
    """The symmetric n x n matrix of a row-major flattened upper triangle (QuIP#'s layout)."""
    import torch
    H = torch.zeros(n, n, dtype=flat.dtype)
    idx = torch.triu_indices(n, n)
    H[idx[0], idx[1]] = flat
    return H + H.T - torch.diag(torch.diag(H))


QUIP_GROUPS = {  # QuIP#'s file suffix -> the Llama weights reading that input
    "qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
    "o": ["self_attn.o_proj"],
    "up": ["mlp.gate_proj", "mlp.up_proj"],
    "down": ["mlp.down_proj"],
}


def convert_quip(args):
    import torch
    os.makedirs(args.out, exist_ok=True)
    for layer in range(args.layers):
        for suffix, modules in QUIP_GROUPS.items():
            src = os.path.join(args.input, f"{layer}_{suffix}.pt")
            if not os.path.exists(src):
                sys.exit(f"hessians.py: {src}: no such file (expected QuIP#'s <layer>_{suffix}.pt)")
            d = torch.load(src, map_location="cpu")
            for key in ("flatH", "mu", "n"):
                if key not in d:
                    sys.exit(f"hessians.py: {src}: no '{key}' entry (keys: {sorted(d)})")
            n = int(d["n"])
            if d["flatH"].numel() != n * (n + 1) // 2 or d["mu"].numel() != n:
                sys.exit(f"hessians.py: {src}: flatH has {d['flatH'].numel()} entries and mu {d['mu'].numel()}, "
                         f"expected {n * (n + 1) // 2} and {n} for n = {n}")
            H = flat_to_sym(d["flatH"].double(), n)
            mu = d["mu"].double().reshape(-1)
            H = 2.0 * (H + torch.outer(mu, mu))
            weights = [f"{args.prefix}{layer}.{m}.weight" for m in modules]
            name = f"{args.prefix}{layer}.{modules[0].rsplit('.', 1)[0]}.{suffix}.safetensors"
            write_safetensors(os.path.join(args.out, name), "H", H.numpy(),
                              {"input_of": ",".join(weights), "tokens": str(int(d.get("ct", 0)))})
            print(f"{src} -> {name} ({n}x{n}, input of {len(weights)})")


def collect(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float16 if args.fp16 else torch.float32)
    model.eval().to(args.device)
    ids = tok(open(args.text, encoding="utf-8").read(), return_tensors="pt").input_ids[0][: args.tokens]
    acc = {}      # id of the input tensor's storage within a forward -> [sum x x^T, count, weights]
    by_input = {}  # first weight reading an input -> (H sum, count, [weights])
    current = {}

    def hook(name):
        def fn(module, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            key = (inputs[0].data_ptr(), tuple(inputs[0].shape))
            if key in current:           # the same input as a module before it (q/k/v, gate/up)
                current[key][2].add(name)
                return
            first = name
            current[key] = (first, x, {name})
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for start in range(0, len(ids) - args.seqlen + 1, args.seqlen):
            current.clear()
            model(ids[start:start + args.seqlen][None].to(args.device))
            for first, x, names in current.values():
                H, ct, ws = by_input.get(first, (0, 0, set()))
                by_input[first] = (H + (x.T @ x).cpu(), ct + x.shape[0], ws | names)
    for h in handles:
        h.remove()
    os.makedirs(args.out, exist_ok=True)
    for first, (H, ct, names) in sorted(by_input.items()):
        weights = sorted(n + ".weight" for n in names)
        write_safetensors(os.path.join(args.out, first + ".safetensors"), "H", (2.0 / ct * H).numpy(),
                          {"input_of": ",".join(weights), "tokens": str(ct)})
        print(f"{first}: {H.shape[0]}x{H.shape[0]} from {ct} tokens, input of {', '.join(weights)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--model", required=True)
    c.add_argument("--text", required=True)
    c.add_argument("--tokens", type=int, default=131072)
    c.add_argument("--seqlen", type=int, default=2048)
    c.add_argument("--device", default="cpu")
    c.add_argument("--fp16", action="store_true")
    c.add_argument("--out", required=True)
    q = sub.add_parser("quip")
    q.add_argument("--in", dest="input", required=True)
    q.add_argument("--layers", type=int, required=True)
    q.add_argument("--prefix", default="model.layers.")
    q.add_argument("--out", required=True)
    args = p.parse_args()
    convert_quip(args) if args.command == "quip" else collect(args)


if __name__ == "__main__":
    main()
