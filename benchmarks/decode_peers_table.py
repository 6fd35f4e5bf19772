#!/usr/bin/env python3
"""Tables from vqlib_bench_decode_peers' console output (median lines): one row per kernel, one
column per shape / batch / temperature, each cell "us (ratio)" with the ratio to the entry's
baseline in the same run (ggml Q2_K, or Q4_0 for the INT4 entries). Usage:
    vqlib_bench_decode_peers > out.txt; python3 benchmarks/decode_peers_table.py out.txt"""
import re
import sys

ansi = re.compile(r"\x1b\[[0-9;]*m")
line = re.compile(r"^(\S+?)/(\d+x\d+)/B=(\d+)(/cold)?/real_time_median\s+([\d.]+) us.*baseline=(\S+)")
times, base = {}, {}
for raw in open(sys.argv[1]):
    m = line.match(ansi.sub("", raw).strip())
    if not m:
        continue
    kernel, shape, batch, cold, us, baseline = m.groups()
    key = (shape, int(batch), bool(cold))
    times[(kernel, key)] = float(us)
    base[(kernel, key)] = baseline
cols = sorted({k for _, k in times}, key=lambda k: (k[2], k[1], ["4096x4096", "11008x4096", "4096x11008"].index(k[0])))
kernels = []
for kern, _ in times:
    if kern not in kernels:
        kernels.append(kern)
kernels.sort(key=lambda k: (k.startswith("ggml"), k))
for cold in (False, True):
    sel = [c for c in cols if c[2] == cold]
    print("\n**%s**\n" % ("Cold (operands streamed from DRAM)" if cold else "Hot (operand in the last-level cache)"))
    print("| kernel | " + " | ".join("%s B=%d" % (c[0], c[1]) for c in sel) + " |")
    print("|---|" + "---|" * len(sel))
    for kern in kernels:
        cells = []
        for c in sel:
            t = times.get((kern, c))
            if t is None:
                cells.append("")
                continue
            b = base[(kern, c)]
            bm = re.match(r"(\S+?)/(\d+x\d+)/B=(\d+)(/cold)?$", b)
            bt = times.get((bm.group(1), c)) if bm else None
            cells.append("%.0f (%.2f)" % (t, t / bt) if bt else "%.0f" % t)
        print("| %s | %s |" % (kern, " | ".join(cells)))
