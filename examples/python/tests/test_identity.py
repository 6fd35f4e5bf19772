"""The Python API gives bit-identical results to the C++ API on the same inputs."""
import numpy as np
import pytest

import vqlib


def python_results(W, H):
    gptq = vqlib.GptqConfig(vqlib.IntGrid(4, symmetric=False), groups=vqlib.GroupOptions(size=128))
    gptq.hessian.act_order = True
    fp8 = vqlib.GptqMinifloatConfig(vqlib.MinifloatGrid(vqlib.MinifloatFormat.fp8_e4m3()))
    fp8.groups.size = 64
    vptq = vqlib.vptq_presets.v4_k256()
    vptq.enable_norm = True
    return {
        "gptq_w4g128_act": vqlib.gptq(W, H, gptq),
        "gptq_fp8_g64": vqlib.gptq(W, H, fp8),
        "gptvq_best_2d": vqlib.gptvq(W, H, vqlib.gptvq_presets.best(2, 2, 2048)),
        "vptq_v4k256_norm": vqlib.vptq(W, H, vptq),
        "pvq_best_3.25": vqlib.pvq(W, H, vqlib.pvq_presets.best(32, 3.25)),
    }


@pytest.fixture(scope="module")
def results(layer):
    return python_results(layer["W"], layer["H"])


@pytest.mark.parametrize("name", ["gptq_w4g128_act", "gptq_fp8_g64", "gptvq_best_2d",
                                  "vptq_v4k256_norm", "pvq_best_3.25"])
def test_q_and_loss_bit_identical_to_cpp(results, reference, name):
    out, losses = reference
    q_cpp = np.load(out / f"Q_{name}.npy")
    r = results[name]
    assert r.Q.shape == q_cpp.shape
    assert r.Q.dtype == np.float32
    assert np.array_equal(r.Q, q_cpp), f"{name}: max |dQ| = {np.abs(r.Q - q_cpp).max()}"
    loss, bpw = losses[name]
    assert r.proxy_loss == loss  # printed with 17 digits: exact for a double
    assert r.bits_per_weight == bpw
    # The layer decodes to the same Q.
    assert np.array_equal(r.layer.dequantize(), q_cpp)


def test_hessian_accumulator_bit_identical_to_cpp(layer, reference):
    out, _ = reference
    acc = vqlib.HessianAccumulator(layer["X"].shape[0])
    acc.add(layer["X"])  # columns x tokens, C order: used in place
    assert np.array_equal(acc.finalize(), np.load(out / "H_accumulated.npy"))


def test_results_identical_for_any_thread_count(small):
    W, H, _ = small
    config = vqlib.gptvq_presets.best(2, 2, 1024)
    vqlib.set_num_threads(1)
    one = vqlib.gptvq(W, H, config)
    vqlib.set_num_threads(2)
    two = vqlib.gptvq(W, H, config)
    assert np.array_equal(one.Q, two.Q)
    assert one.proxy_loss == two.proxy_loss


def test_float32_and_float64_hessians_in_either_order_agree(small):
    """H as float64/float32, C/Fortran order: the library sees the same matrix each time."""
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(3), groups=vqlib.GroupOptions(size=64))
    H32 = H.astype(np.float32)
    base = vqlib.gptq(W, H32, config)
    for h in (np.ascontiguousarray(H32), np.asfortranarray(H32)):
        assert np.array_equal(vqlib.gptq(W, h, config).Q, base.Q)
    r64 = vqlib.gptq(W, H, config)
    assert np.array_equal(vqlib.gptq(W, np.ascontiguousarray(H), config).Q, r64.Q)
