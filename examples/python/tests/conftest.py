"""Shared fixtures of the Python binding tests: the fixture layer (tests/data) and the C++
reference runner's outputs on it (vqlib_python_reference, built with the module)."""
import os
import pathlib
import subprocess

import numpy as np
import pytest

import vqlib


def fixtures_dir() -> pathlib.Path:
    env = os.environ.get("VQLIB_FIXTURES_DIR")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"


@pytest.fixture(scope="session")
def layer():
    """The 256 x 512 fixture layer: W (C order, as np.load gives it), H and X (512 x 1024)."""
    d = fixtures_dir() / "reference" / "layer_256x512"
    return {name: np.load(d / f"{name}.npy") for name in ("W", "H", "X")}


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Runs the C++ reference runner on the fixture layer; returns its output folder."""
    runner = os.environ.get("VQLIB_PYTHON_REFERENCE")
    if not runner:
        pytest.skip("VQLIB_PYTHON_REFERENCE is not set (run the tests through ctest)")
    d = fixtures_dir() / "reference" / "layer_256x512"
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([runner, d / "W.npy", d / "H.npy", d / "X.npy", out], check=True)
    losses = {}
    for line in (out / "losses.txt").read_text().splitlines():
        name, loss, bpw = line.split()
        losses[name] = (float(loss), float(bpw))
    return out, losses


@pytest.fixture()
def small():
    """A small random layer with a Hessian from random activations."""
    rng = np.random.default_rng(7)
    W = (0.02 * rng.standard_normal((64, 256))).astype(np.float32)
    X = rng.standard_normal((2048, 256)).astype(np.float32)
    acc = vqlib.HessianAccumulator(256)
    acc.add_rows(X)
    return W, acc.finalize(), X


@pytest.fixture(autouse=True)
def restore_threads():
    threads = vqlib.num_threads()
    yield
    vqlib.set_num_threads(0)
    assert vqlib.num_threads() == threads
