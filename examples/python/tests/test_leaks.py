"""Repeated calls leak neither references nor memory, and the GIL is released while quantizing."""
import gc
import os
import sys
import threading
import time

import numpy as np

import vqlib

# The INT4 decode kernel reads fp16 scales (as GPTQ checkpoints store them).
INT4_FP16_SCALES = vqlib.IntGrid(4, scale_storage=vqlib.ScaleStorage.fp16)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_no_reference_leaks_on_repeated_calls(small):
    W, H, X = small
    W = np.asfortranarray(W)
    config = vqlib.GptqConfig(vqlib.IntGrid(4), groups=vqlib.GroupOptions(size=64))
    counts = [sys.getrefcount(o) for o in (W, H, X, config)]
    for _ in range(50):
        r = vqlib.gptq(W, H, config)
        _ = r.Q, r.layer.codes, r.layer.scales, r.stats.seconds_total
        acc = vqlib.HessianAccumulator(256)
        acc.add_rows(X)
        acc.finalize()
        try:
            vqlib.gptq(W, H[:5], config)
        except vqlib.ShapeError:
            pass
    del r, acc
    gc.collect()
    assert [sys.getrefcount(o) for o in (W, H, X, config)] == counts


def test_no_memory_growth_on_repeated_calls(small):
    W, H, X = small
    config = vqlib.GptqConfig(INT4_FP16_SCALES, groups=vqlib.GroupOptions(size=64))
    m = vqlib.kernels.Int4GemvMatrix.from_layer(vqlib.gptq(W, H, config).layer)
    x = np.ones((2, 256), np.float32)

    def round_trip():
        r = vqlib.gptq(W, H, config)
        q = r.Q
        d = r.layer.dequantize()
        y = m.gemv(x)
        p = vqlib.prepare_hessian(H)
        u = p.U
        return q.sum() + d.sum() + y.sum() + u.sum()

    for _ in range(30):  # warm up allocator pools
        round_trip()
    gc.collect()
    before = rss_bytes()
    for _ in range(300):
        round_trip()
    gc.collect()
    grown = rss_bytes() - before
    # Each round allocates ~1 MB (Q, dequantized W, U of 256 x 256 floats, ...): a leak of any of
    # them would grow the process by 20 MB or more over 300 rounds.
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 300 calls"


def test_gil_is_released_while_quantizing(layer):
    vqlib.set_num_threads(1)
    W, H = layer["W"], layer["H"]
    config = vqlib.vptq_presets.v4_k256()
    done = threading.Event()

    def worker():
        vqlib.vptq(W, H, config)
        done.set()

    t = threading.Thread(target=worker)
    start = time.perf_counter()
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
    seconds = time.perf_counter() - start
    t.join()
    # With the GIL held during the call this thread could not run at all until it returned.
    assert seconds > 0.05
    assert ticks / seconds > 1e5, f"{ticks} ticks in {seconds:.2f} s"
