"""The Python API: configurations, presets, Hessians, layers, decode kernels, checkpoints."""
import numpy as np
import pytest

import vqlib


def test_config_fields_by_keyword_and_by_reference():
    c = vqlib.GptvqConfig(update=vqlib.ErrorUpdateKind.exact,
                          vq=vqlib.VqOptions(dim=4, k=256, weights_per_codebook=65536))
    assert c.update == vqlib.ErrorUpdateKind.exact and c.vq.dim == 4 and c.vq.k == 256
    c.hessian.percdamp = 0.05            # nested structs are references into the config
    c.codebooks.integer.bits = 6         # so is the content of an optional
    c.kmeans.seeding.reference_float32 = True  # and of a variant
    assert c.hessian.percdamp == 0.05
    assert c.codebooks.integer.bits == 6
    assert c.kmeans.seeding.reference_float32
    c.codebooks.integer = None           # fp16 codebooks
    assert c.codebooks.integer is None
    c.kmeans.seeding = vqlib.RandomSeeding()
    assert isinstance(c.kmeans.seeding, vqlib.RandomSeeding)
    assert c.kmeans.acceleration == vqlib.KMeansAcceleration.automatic
    c.kmeans.acceleration = vqlib.KMeansAcceleration.bounds
    assert "acceleration=<KMeansAcceleration.bounds" in repr(c.kmeans)
    assert "percdamp=0.05" in repr(c)
    p = vqlib.PvqConfig()
    p.incoherence = None
    assert p.incoherence is None
    p.gain = vqlib.LogUniformGain(gain_bits=6, lo=0.1, hi=2.0)
    assert p.gain.gain_bits == 6


def test_presets_match_their_documentation():
    best = vqlib.gptvq_presets.best(2, 2, 2048)
    assert (best.vq.dim, best.vq.k, best.vq.weights_per_codebook) == (2, 16, 2048)
    assert best.codebook_update.method == vqlib.CodebookUpdateMethod.least_squares
    ref = vqlib.gptvq_presets.reference_compatible(2, 2, 2048)
    assert ref.codebook_update.method == vqlib.CodebookUpdateMethod.adam
    assert vqlib.gptvq_presets.paper(4, 2.125).vq.k == 256
    v = vqlib.vptq_presets.rate(8, 2.0, 1.0)
    assert (v.vector_len, v.num_centroids, v.num_res_centroids) == (8, 65536, 256)
    assert vqlib.vptq_presets.v6_k4096().num_centroids == 4096
    assert vqlib.pvq_presets.best(32, 3.25).pvq.pulses == 50
    assert vqlib.pvq_presets.paper().pvq.search == vqlib.ShapeSearch.greedy
    with pytest.raises(vqlib.InvalidArgumentError):
        vqlib.gptvq_presets.paper(3, 2.125)


def test_hessian_accumulator(small):
    W, H, X = small
    acc = vqlib.HessianAccumulator(256)
    acc.add(X[:1000].T)
    other = vqlib.HessianAccumulator(256)
    other.add_rows(X[1000:])
    acc.merge(other)
    assert acc.tokens == 2048 and acc.columns == 256
    assert np.allclose(acc.finalize(), H, rtol=1e-12, atol=1e-12)
    assert np.allclose(acc.gram(), X.astype(np.float64).T @ X.astype(np.float64), rtol=1e-10)
    one = vqlib.HessianAccumulator(256)
    assert one.add_rows(X[0]) is None  # usable as a forward pre-hook (None keeps the input)
    assert one.tokens == 1
    acc.reset()
    assert acc.tokens == 0


def test_prepared_hessian_is_shared_without_changing_results(small):
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(3), groups=vqlib.GroupOptions(size=128))
    config.hessian.act_order = True
    prepared = vqlib.prepare_hessian(H, config.hessian)
    assert prepared.columns == 256 and sorted(prepared.perm) == list(range(256))
    assert prepared.U.shape == (256, 256) and prepared.attempts == 1
    direct = vqlib.gptq(W, H, config)
    for rows in (W, W[:32]):  # two linears reading the same input
        shared = vqlib.gptq(rows, prepared, config)
        assert np.isfinite(shared.proxy_loss)  # from the solver's error sum
    shared = vqlib.gptq(W, prepared, config)
    assert np.array_equal(shared.Q, direct.Q)
    assert shared.proxy_loss == direct.proxy_loss
    # The solver's figure agrees with the float64 product; exact and none on request.
    assert abs(direct.proxy_loss / vqlib.proxy_loss(W, direct.Q, H) - 1) < 1e-6
    config.loss = vqlib.LossEvaluation.exact
    assert vqlib.gptq(W, H, config).proxy_loss == vqlib.proxy_loss(W, direct.Q, H)
    config.loss = vqlib.LossEvaluation.none
    assert np.isnan(vqlib.gptq(W, H, config).proxy_loss)
    # GPTVQ takes the same preparation; with act-order, one that keeps its vectors whole.
    gconfig = vqlib.gptvq_presets.best(2, 2, 1024)
    gprepared = vqlib.prepare_hessian(H, gconfig.hessian)
    assert np.array_equal(vqlib.gptvq(W, H, gprepared, gconfig).Q, vqlib.gptvq(W, H, gconfig).Q)
    gconfig.hessian.act_order = True
    gprepared = vqlib.gptvq_prepare_hessian(H, gconfig)
    assert gprepared.perm != list(range(256))
    assert np.array_equal(vqlib.gptvq(W, H, gprepared, gconfig).Q, vqlib.gptvq(W, H, gconfig).Q)
    with pytest.raises(vqlib.InvalidArgumentError, match="act_order_unit = 2"):
        vqlib.gptvq(W, H, vqlib.prepare_hessian(H, gconfig.hessian), gconfig)


def test_round_to_nearest_and_scalar_layer(small):
    W, H, _ = small
    config = vqlib.GptqConfig(vqlib.IntGrid(4), groups=vqlib.GroupOptions(size=64))
    rtn = vqlib.rtn(W, config)
    gptq = vqlib.gptq(W, H, config)
    assert vqlib.proxy_loss(W, rtn.Q, H) > gptq.proxy_loss
    layer = gptq.layer
    assert layer.shape == W.shape and layer.groups == 4 and layer.group_size == 64
    assert layer.scales.shape == (64, 4) and layer.zeros.shape == (64, 4)
    # Q = scale * (code - zero) per (row, group).
    g = np.arange(256) // 64
    q = layer.scales[:, g] * (layer.codes.astype(np.float32) - layer.zeros[:, g])
    assert np.array_equal(q.astype(np.float32), gptq.Q)
    assert gptq.bits_per_weight == layer.bits_per_weight()
    assert gptq.stats.steps == 256 and gptq.seconds > 0


def test_gptvq_scaled_configuration(small):
    W, H, _ = small
    config = vqlib.gptvq_presets.paper_scaled(2, 2.125)
    assert config.vq.normalization.block_size == 64 and config.vq.weights_per_codebook == 4096
    r = vqlib.gptvq(W, H, config)
    assert r.layer.scale_block == 64 and r.layer.scales.shape == (64, 4)
    assert np.array_equal(r.layer.dequantize(), r.Q)
    config.vq.normalization.block_size = 48
    with pytest.raises(vqlib.ShapeError, match="normalization.block_size = 48"):
        vqlib.gptvq(W, H, config)
    config.vq.normalization = None
    assert vqlib.gptvq(W, H, config).layer.scale_block == 0


def test_gptvq_svd_codebooks(small):
    W, H, _ = small
    config = vqlib.gptvq_presets.paper_svd(2.125)
    assert config.svd.rank_fraction == 0.5 and config.svd.u_quantization.bits == 8
    r = vqlib.gptvq(W, H, config)
    assert r.layer.basis.shape == (2, 4)
    assert np.array_equal(r.layer.dequantize(), r.Q)
    config.svd.rank_fraction = 0.1
    with pytest.raises(vqlib.InvalidArgumentError, match="rank_fraction = 0.1"):
        vqlib.gptvq(W, H, config)
    config.svd = None
    assert vqlib.gptvq(W, H, config).layer.basis.size == 0


def test_gptvq_layer_and_decode_kernel(small):
    W, H, _ = small
    r = vqlib.gptvq(W, H, vqlib.gptvq_presets.best(2, 2, 1024))
    L = r.layer.layout
    assert (L.rows, L.cols, L.dim, L.k) == (64, 256, 2, 16)
    assert r.layer.codebooks.shape == (L.codebook_count * 16, 2)
    assert r.layer.indices.shape == (64, 128)
    assert r.codebook_update.loss_after <= r.codebook_update.loss_before
    m = vqlib.kernels.VqGemvMatrix.from_layer(r.layer)
    assert np.array_equal(m.dequantize(), r.Q)
    x = np.random.default_rng(2).standard_normal((3, 256)).astype(np.float32)
    y = m.gemv(x)
    ref = x.astype(np.float64) @ r.Q.T.astype(np.float64)
    bound = 2 * 260 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(r.Q).T)
    assert np.all(np.abs(y - ref) <= bound)
    big = np.random.default_rng(3).standard_normal((20, 256)).astype(np.float32)
    assert np.allclose(m.matmul(big), big @ r.Q.T, rtol=1e-4, atol=1e-5)
    # Every instruction set this CPU runs gives the same bits.
    for isa in (vqlib.kernels.Isa.portable, vqlib.kernels.Isa.avx2, vqlib.kernels.Isa.avx512):
        if vqlib.kernels.isa_supported(isa):
            assert np.array_equal(m.gemv(x, vqlib.kernels.GemvOptions(isa=isa)), y)


def test_vptq_checkpoint_round_trip(tmp_path, small):
    W, H, _ = small
    config = vqlib.vptq_presets.v4_k256()
    config.enable_norm = True
    r = vqlib.vptq(W, H, config)
    assert r.layer.layout.vector_len == 4 and r.layer.centroids.shape == (256, 4)
    assert r.proxy_loss <= r.proxy_loss_first_pass + 1e-9 * abs(r.proxy_loss_first_pass)
    vqlib.save_vptq_model(str(tmp_path / "ckpt"), {"model.layers.0.mlp.down_proj": r.layer})
    loaded = vqlib.load_vptq_model(str(tmp_path / "ckpt"))
    assert list(loaded) == ["model.layers.0.mlp.down_proj"]
    assert np.array_equal(loaded["model.layers.0.mlp.down_proj"].dequantize(), r.Q)
    tensors, _ = vqlib.read_safetensors(str(tmp_path / "ckpt" / "model.safetensors"))
    assert "model.layers.0.mlp.down_proj.centroids.weight" in tensors
    m = vqlib.kernels.VptqGemvMatrix.from_layer(loaded["model.layers.0.mlp.down_proj"])
    x = np.ones(256, np.float32)
    assert np.allclose(m.gemv(x), r.Q @ x, rtol=1e-4, atol=1e-4)


def test_pvq_layer(small):
    W, H, _ = small
    r = vqlib.pvq(W, H, vqlib.pvq_presets.best(32, 3.25))
    assert r.layer.dim == 32 and r.layer.pulses == 50
    assert r.layer.gain_codes.shape == (64 * 8,) and r.layer.row_norms.shape == (64,)
    assert len(r.layer.packed_indices()) > 0
    assert np.array_equal(r.layer.dequantize(), r.Q)
    assert 3.25 < r.bits_per_weight < 3.6


def test_safetensors_round_trip(tmp_path):
    tensors = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b": np.array([1.5, -2.0], dtype=np.float16),
        "c": np.arange(5, dtype=np.int32),
        "d": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    }
    path = str(tmp_path / "t.safetensors")
    vqlib.write_safetensors(path, tensors, {"format": "pt"})
    back, metadata = vqlib.read_safetensors(path)
    assert metadata == {"format": "pt"}
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value)
    with pytest.raises(vqlib.InvalidArgumentError, match=r"tensors\['z'\] has dtype complex64"):
        vqlib.write_safetensors(path, {"z": np.zeros(2, np.complex64)})


def test_int4_decode_kernel(small):
    W, H, _ = small
    grid = vqlib.IntGrid(4, scale_storage=vqlib.ScaleStorage.fp16)
    r = vqlib.gptq(W, H, vqlib.GptqConfig(grid, groups=vqlib.GroupOptions(size=128)))
    m = vqlib.kernels.Int4GemvMatrix.from_layer(r.layer)
    assert (m.rows, m.cols) == W.shape
    assert np.array_equal(m.dequantize(), r.Q)
    x = np.random.default_rng(4).standard_normal((8, 256)).astype(np.float32)
    y = m.gemv(x)
    ref = x.astype(np.float64) @ r.Q.T.astype(np.float64)
    bound = 2 * 260 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(r.Q).T)
    assert y.shape == (8, 64) and np.all(np.abs(y - ref) <= bound)
    # Act-order with dynamic groups stores g_idx, which this kernel refuses by name.
    config = vqlib.GptqConfig(grid, groups=vqlib.GroupOptions(size=128))
    config.hessian.act_order = True
    with pytest.raises(vqlib.InvalidArgumentError, match="g_idx"):
        vqlib.kernels.Int4GemvMatrix.from_layer(vqlib.gptq(W, H, config).layer)


def test_vqlib_checkpoint_round_trip(tmp_path, small):
    W, H, _ = small
    act = vqlib.GptqConfig(vqlib.IntGrid(3), groups=vqlib.GroupOptions(size=64))
    act.hessian.act_order = True
    fp8 = vqlib.GptqMinifloatConfig(vqlib.MinifloatGrid(vqlib.MinifloatFormat.fp8_e4m3()))
    results = {
        "int3_act": vqlib.gptq(W, H, act),
        "fp8": vqlib.gptq(W, H, fp8),
        "gptvq": vqlib.gptvq(W, H, vqlib.gptvq_presets.best(2, 2, 1024)),
        "vptq": vqlib.vptq(W, H, vqlib.vptq_presets.make(4, 64, 16)),
        "pvq": vqlib.pvq(W, H, vqlib.pvq_presets.best(32, 3.25)),
    }
    path = str(tmp_path / "model.vqlib.safetensors")
    vqlib.save_checkpoint(path, {k: r.layer for k, r in results.items()}, {"base": "small"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.vqlib.safetensors"]
    loaded = vqlib.load_checkpoint(path)
    assert sorted(loaded) == sorted(results)
    for name, r in results.items():
        assert type(loaded[name]) is type(r.layer)
        assert np.array_equal(loaded[name].dequantize(), r.Q), name
        assert loaded[name].bits_per_weight() == r.bits_per_weight
    assert vqlib.read_safetensors(path)[1]["base"] == "small"
    # A damaged file is refused by name, and a refused save writes nothing.
    tensors, metadata = vqlib.read_safetensors(path)
    tensors["gptvq.indices"][0, 0] = 16
    vqlib.write_safetensors(str(tmp_path / "bad.safetensors"), tensors, metadata)
    with pytest.raises(vqlib.IoError, match=r"layer 'gptvq': index 16 at \(0, 0\)"):
        vqlib.load_checkpoint(str(tmp_path / "bad.safetensors"))
    with pytest.raises(vqlib.InvalidArgumentError, match="reserved"):
        vqlib.save_checkpoint(str(tmp_path / "x.safetensors"), {"a": results["fp8"].layer},
                              {"vqlib": "mine"})
    assert not (tmp_path / "x.safetensors").exists()
