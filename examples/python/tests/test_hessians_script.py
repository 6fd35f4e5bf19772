"""docs/hessians.py quip: QuIP#'s per-layer Hessian files (flattened upper triangle of the
covariance, the mean, n, the token count) converted into vqlib-quantize's Hessian directory."""
import importlib.util
import json
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "docs" / "hessians.py"


def read_single_tensor(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__")
    (name, entry), = header.items()
    data = np.frombuffer(b[8 + n + entry["data_offsets"][0]:8 + n + entry["data_offsets"][1]], dtype="<f4")
    return name, data.reshape(entry["shape"]), meta


def quip_file(path, X):
    mu = X.mean(0)
    C = (X - mu).T @ (X - mu) / X.shape[0]
    n = X.shape[1]
    idx = torch.triu_indices(n, n)
    torch.save({"flatH": C[idx[0], idx[1]].float(), "mu": mu.float(), "n": n, "ct": X.shape[0]}, path)


def test_quip_conversion_gives_gptq_hessians(tmp_path):
    gen = torch.Generator().manual_seed(3)
    inputs = {}
    for suffix, n in (("qkv", 16), ("o", 16), ("up", 16), ("down", 40)):
        X = torch.randn(200, n, generator=gen, dtype=torch.float64) + 0.5
        quip_file(tmp_path / f"0_{suffix}.pt", X)
        inputs[suffix] = X
    out = tmp_path / "h"
    subprocess.run([sys.executable, str(SCRIPT), "quip", "--in", str(tmp_path), "--layers", "1", "--out", str(out)],
                   check=True, capture_output=True)
    name, H, meta = read_single_tensor(out / "model.layers.0.self_attn.qkv.safetensors")
    X = inputs["qkv"]
    expected = (2.0 / X.shape[0] * X.T @ X).numpy()
    assert name == "H" and H.shape == (16, 16)
    assert np.abs(H - expected).max() <= 1e-5 * np.abs(expected).max()
    assert meta["input_of"] == ",".join(f"model.layers.0.self_attn.{m}_proj.weight" for m in "qkv")
    assert meta["tokens"] == "200"
    _, Hd, meta = read_single_tensor(out / "model.layers.0.mlp.down.safetensors")
    assert Hd.shape == (40, 40) and meta["input_of"] == "model.layers.0.mlp.down_proj.weight"
    _, _, meta = read_single_tensor(out / "model.layers.0.mlp.up.safetensors")
    assert meta["input_of"] == "model.layers.0.mlp.gate_proj.weight,model.layers.0.mlp.up_proj.weight"


def test_quip_conversion_names_bad_files(tmp_path):
    torch.save({"flatH": torch.zeros(10), "mu": torch.zeros(4)}, tmp_path / "0_qkv.pt")
    r = subprocess.run([sys.executable, str(SCRIPT), "quip", "--in", str(tmp_path), "--layers", "1", "--out",
                        str(tmp_path / "h")], capture_output=True, text=True)
    assert r.returncode != 0 and "0_qkv.pt" in r.stderr and "'n'" in r.stderr
