#!/usr/bin/env bash
# The Llama-2-7B-shaped model of benchmarks/model_7b.cpp through vqlib-quantize: BLOCKS decoder
# blocks written as a BF16 checkpoint with float32 Hessians (vqlib_bench_model_7b
# --write-checkpoint), quantized by one process and by mpirun -np NP, the outputs compared byte for
# byte. Prints each run's wall, user and system seconds and peak resident memory (GNU time; for
# mpirun the largest rank's), and the 32-block estimate from the measured per-block time.
#
#   benchmarks/quantize_7b.sh BENCH_BUILD TOOL_BUILD [WORK_DIR]
#     BENCH_BUILD  a build with the benchmarks (e.g. build/bench), for vqlib_bench_model_7b
#     TOOL_BUILD   a build with the examples (e.g. build/release), for vqlib-quantize(-mpi)
#   environment: BLOCKS (default 2), METHOD (default gptq:w4g128), NP (default 2), KEEP=1 keeps WORK_DIR
set -euo pipefail
bench=${1:?usage: quantize_7b.sh BENCH_BUILD TOOL_BUILD [WORK_DIR]}
tools=${2:?usage: quantize_7b.sh BENCH_BUILD TOOL_BUILD [WORK_DIR]}
work=${3:-${TMPDIR:-/tmp}/vqlib-quantize-7b}
blocks=${BLOCKS:-2}
method=${METHOD:-gptq:w4g128}
np=${NP:-2}
quantize=$tools/examples/quantize/vqlib-quantize
quantize_mpi=$tools/examples/quantize/vqlib-quantize-mpi
for exe in "$bench/benchmarks/vqlib_bench_model_7b" "$quantize"; do
    [ -x "$exe" ] || { echo "quantize_7b.sh: $exe not built" >&2; exit 2; }
done

mkdir -p "$work"
inputs=$work/inputs-$blocks
if [ ! -f "$inputs/model/config.json" ]; then
    rm -rf "$inputs"
    "$bench/benchmarks/vqlib_bench_model_7b" --write-checkpoint "$inputs" --blocks "$blocks"
fi
args=(--model "$inputs/model" --hessians "$inputs/hessians" --method "$method")

measure() {  # label, command...: runs it under GNU time, prints one line
    local label=$1 log=$work/time.log
    shift
    /usr/bin/time -o "$log" -f "%e %U %S %M" "$@" > "$work/$label.out" 2>&1 ||
        { cat "$work/$label.out"; exit 1; }
    awk -v label="$label" -v blocks="$blocks" '{ printf "%-16s wall %8.1f s  user %8.1f s  sys %6.1f s  peak %6.0f MiB  32 blocks: %6.1f min\n", label, $1, $2, $3, $4 / 1024, $1 / blocks * 32 / 60 }' "$log"
}

echo "vqlib-quantize, $method, $blocks Llama-2-7B-shaped blocks (+ embeddings and head copied), $(nproc) cores"
rm -rf "$work/one" "$work/mpi"
measure "one process" "$quantize" "${args[@]}" --out "$work/one"
grep -E '^total' "$work/one process.out" || true
if [ -x "$quantize_mpi" ] && command -v mpirun > /dev/null; then
    measure "mpirun -np $np" mpirun --allow-run-as-root --oversubscribe -np "$np" "$quantize_mpi" "${args[@]}" --out "$work/mpi"
    if cmp -s "$work/one/model.vqlib.safetensors" "$work/mpi/model.vqlib.safetensors"; then
        echo "mpirun -np $np output byte-identical to one process"
    else
        echo "mpirun -np $np output DIFFERS from one process" >&2
        exit 1
    fi
else
    echo "(vqlib-quantize-mpi or mpirun missing: no MPI run)"
fi
[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
