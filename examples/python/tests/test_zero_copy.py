"""Arrays cross the boundary without copies where the layout allows, and results are views."""
import numpy as np
import pytest

import vqlib

# The INT4 decode kernel reads fp16 scales (as GPTQ checkpoints store them).
INT4_FP16_SCALES = vqlib.IntGrid(4, scale_storage=vqlib.ScaleStorage.fp16)


def copies_during(f):
    before = vqlib._input_copies()
    result = f()
    return vqlib._input_copies() - before, result


def test_weights_in_fortran_order_are_used_in_place(small):
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(4))
    n, fortran = copies_during(lambda: vqlib.gptq(np.asfortranarray(W), H, config))
    assert n == 0
    n, c_order = copies_during(lambda: vqlib.gptq(np.ascontiguousarray(W), H, config))
    assert n == 1  # converted once to the library's column-major layout
    n, doubles = copies_during(lambda: vqlib.gptq(np.asfortranarray(W, np.float64), H, config))
    assert n == 1
    assert np.array_equal(fortran.Q, c_order.Q) and np.array_equal(fortran.Q, doubles.Q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_hessians_and_activations_are_used_in_place(small, dtype, order):
    W, H, X = small
    h = np.array(H, dtype=dtype, order=order)
    x = np.array(X, dtype=dtype, order=order)
    config = vqlib.GptqConfig(vqlib.IntGrid(4))
    n, _ = copies_during(lambda: vqlib.gptq(np.asfortranarray(W), h, config))
    assert n == 0
    acc = vqlib.HessianAccumulator(256)
    n, _ = copies_during(lambda: acc.add_rows(x))
    assert n == 0
    n, _ = copies_during(lambda: acc.add(x.T))
    assert n == 0


def test_strided_arrays_are_copied_once(small):
    W, H, X = small
    acc = vqlib.HessianAccumulator(256)
    n, _ = copies_during(lambda: acc.add_rows(X[::2]))
    assert n == 1
    ref = vqlib.HessianAccumulator(256)
    ref.add_rows(np.ascontiguousarray(X[::2]))
    assert np.array_equal(acc.finalize(), ref.finalize())


def test_results_are_read_only_views(small):
    W, H, _ = small
    r = vqlib.gptq(W, H, vqlib.GptqConfig(vqlib.IntGrid(4)))
    q1, q2 = r.Q, r.Q
    assert q1.__array_interface__["data"][0] == q2.__array_interface__["data"][0]
    assert not q1.flags.writeable
    with pytest.raises(ValueError):
        q1[0, 0] = 1.0
    codes = r.layer.codes
    assert codes.dtype == np.uint16 and codes.shape == W.shape
    assert codes.__array_interface__["data"][0] == r.layer.codes.__array_interface__["data"][0]
    # The view keeps the result alive.
    expected = q1.copy()
    del r
    assert np.array_equal(q1, expected)


def test_gemv_activations_in_place(small):
    W, H, _ = small
    r = vqlib.gptq(W, H, vqlib.GptqConfig(INT4_FP16_SCALES, groups=vqlib.GroupOptions(size=128)))
    m = vqlib.kernels.Int4GemvMatrix.from_layer(r.layer)
    x = np.random.default_rng(1).standard_normal((4, 256)).astype(np.float32)
    n, y = copies_during(lambda: m.gemv(x))
    assert n == 0 and y.shape == (4, 64)
    n, y1 = copies_during(lambda: m.gemv(x[1]))
    assert n == 0 and y1.shape == (64,)
    assert np.array_equal(y1, m.gemv(x[1:2])[0])  # a vector is a batch of one
    assert np.allclose(y1, y[1], rtol=1e-5, atol=1e-6)  # batch kernels may sum in another order


def test_torch_tensors_are_used_in_place(small):
    torch = pytest.importorskip("torch")
    W, H, X = small
    acc = vqlib.HessianAccumulator(256)
    n, _ = copies_during(lambda: acc.add_rows(torch.from_numpy(X)))
    assert n == 0
    ref = vqlib.HessianAccumulator(256)
    ref.add_rows(X)
    assert np.array_equal(acc.finalize(), ref.finalize())
