"""vqlib's C++ errors arrive as Python exceptions with the same messages."""
import numpy as np
import pytest

import vqlib

# The INT4 decode kernel reads fp16 scales (as GPTQ checkpoints store them).
INT4_FP16_SCALES = vqlib.IntGrid(4, scale_storage=vqlib.ScaleStorage.fp16)


def test_hierarchy():
    assert issubclass(vqlib.Error, ValueError)
    for category in (vqlib.InvalidArgumentError, vqlib.ShapeError, vqlib.NumericalError,
                     vqlib.IoError):
        assert issubclass(category, vqlib.Error)


def test_invalid_argument_names_value_and_range():
    with pytest.raises(vqlib.InvalidArgumentError, match=r"bits = 0: expected a value in \[1, 16\]"):
        vqlib.IntGrid(0)


def test_shape_error_from_the_recipe(small):
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(4))
    with pytest.raises(vqlib.ShapeError, match=r"H is 255x256: expected a square matrix"):
        vqlib.gptq(W, H[:255], config)
    with pytest.raises(vqlib.ShapeError, match=r"H is 128x128"):
        vqlib.gptq(W, H[:128, :128], config)


def test_numerical_error_for_nan(small):
    W, H, _ = small
    W = W.copy()
    W[3, 5] = np.nan
    with pytest.raises(vqlib.NumericalError, match=r"W"):
        vqlib.vptq(W, H, vqlib.vptq_presets.v4_k256())


def test_io_error_names_the_file(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(vqlib.IoError, match="missing.safetensors"):
        vqlib.read_safetensors(str(missing))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(vqlib.IoError):
        vqlib.read_safetensors(str(bad))
    with pytest.raises(vqlib.IoError, match="config.json"):
        vqlib.load_vptq_model(str(tmp_path))


def test_array_arguments_are_checked(small):
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(4))
    with pytest.raises(vqlib.InvalidArgumentError, match=r"W has dtype int64: expected float32 or float64"):
        vqlib.gptq(W.astype(np.int64), H, config)
    with pytest.raises(vqlib.ShapeError, match=r"H has 3 dimensions"):
        vqlib.gptq(W, H[None], config)
    with pytest.raises(vqlib.ShapeError, match=r"X is 100x4: expected 256 rows"):
        vqlib.HessianAccumulator(256).add(np.zeros((100, 4), np.float32))
    with pytest.raises(vqlib.InvalidArgumentError, match="tokens = 0"):
        vqlib.HessianAccumulator(8).finalize()


def test_unknown_config_field_is_a_type_error():
    with pytest.raises(TypeError, match=r"GptvqConfig\(\): unknown field 'groupsize'"):
        vqlib.GptvqConfig(groupsize=128)
    with pytest.raises(TypeError):
        vqlib.HessianOptions(percdamp="a lot")


def test_errors_inside_the_solve_are_raised_once_threads_stop(small):
    W, H, _ = small
    indefinite = -np.eye(256)
    config = vqlib.GptqConfig(vqlib.IntGrid(4))
    with pytest.raises(vqlib.NumericalError):
        vqlib.gptq(W, indefinite, config)
    # The module still works afterwards.
    assert np.isfinite(vqlib.gptq(W, H, config).proxy_loss)


def test_kernel_shape_errors(small):
    W, H, _ = small
    r = vqlib.gptq(W, H, vqlib.GptqConfig(INT4_FP16_SCALES, groups=vqlib.GroupOptions(size=128)))
    m = vqlib.kernels.Int4GemvMatrix.from_layer(r.layer)
    with pytest.raises(vqlib.ShapeError, match=r"x has 255 features"):
        m.gemv(np.zeros(255, np.float32))
