#pragma once
// vqlib-quantize as a library: whole checkpoints in, quantized checkpoints out (docs/quantize.md).
// main.cpp parses the command line into Options and calls quantize_checkpoint; the
// tests call it directly.
#include "hessians.hpp"
#include "spec.hpp"

#include <vqlib/core/error.hpp>
#include <vqlib/io/model_checkpoint.hpp>

#include <exception>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vqlib::quantize {

/// The processes of a run: one (the default), or MPI ranks (mpi.cpp). Every rank runs
/// quantize_checkpoint with the same options; each quantizes its share of the linears, rank 0
/// writes the outputs.
struct Communicator {
    virtual ~Communicator() = default;
    virtual int rank() const { return 0; }
    virtual int size() const { return 1; }
    virtual void barrier() {}
    /// True when `ok` is true on every rank (a collective: every rank must call it).
    virtual bool all(bool ok) { return ok; }
};

/// Runs body() on this rank, then agrees with the others (a collective): when any rank's body
/// threw, every rank throws, the failing ones their own exception, the others
/// io_error(`elsewhere`), so that no rank goes on alone.
template <class Body>
void collectively(Communicator& comm, const char* elsewhere, Body&& body) {
    std::exception_ptr failure;
    try {
        body();
    } catch (...) {
        failure = std::current_exception();
    }
    if (!comm.all(!failure)) {
        if (failure) std::rethrow_exception(failure);
        throw io_error(elsewhere);
    }
}

struct Options {
    std::filesystem::path model;     // a .safetensors file, an index.json, or a directory of either
    std::filesystem::path hessians;  // directory of Hessians (hessians.hpp)
    std::filesystem::path out;       // output directory
    std::string method = "gptq:w4g128";
    /// (glob pattern, spec): linears whose tensor name matches take that spec; the last match wins.
    std::vector<std::pair<std::string, std::string>> overrides;
    /// Glob patterns (fnmatch) of tensor names. With include patterns every matching 2-D tensor
    /// must have a Hessian (or --skip-missing); without, every 2-D weight with a Hessian is taken.
    std::vector<std::string> include, exclude;
    HessianStore::Groups share = HessianStore::default_groups();
    bool skip_missing = false;
    bool overwrite = false;
    /// Also write a VPTQ checkpoint the HF + vptq stack loads (<out>/vptq), in this dtype.
    bool vptq = false;
    io::Dtype vptq_dtype = io::Dtype::F16;
    /// Also write the dequantized model (<out>/dequantized) in this dtype.
    std::optional<io::Dtype> dequantized;
    int threads = 0;  // 0: all cores
    bool quiet = false;
    /// Called after each linear this process persisted, with the count so far (test hook).
    std::function<void(std::size_t)> after_linear;
};

struct LinearReport {
    std::string name;  // the weight tensor
    Index rows = 0, cols = 0;
    std::string method;
    std::string hessian;  // file name in the Hessian directory
    double bits_per_weight = 0;
    double proxy_loss = 0;
    double relative_loss = 0;  // proxy_loss / tr(W H W^T)
    /// The loss of the dequantized weight as written in the dequantized dtype (rounded), when
    /// that output was asked for.
    std::optional<double> dequantized_loss;
    double percdamp = 0;
    double seconds = 0;
    int rank = 0;
    bool resumed = false;
};

struct Report {
    std::vector<LinearReport> linears;
    /// 2-D tensors left as they are, with why.
    std::vector<std::pair<std::string, std::string>> kept;
    std::vector<std::string> warnings;
    double seconds = 0;
    /// Where this process's wall time went: reading weights, loading Hessians, quantizing, the
    /// reported losses (tr(W H W^T) and the rounded dequantized loss), persisting parts, writing
    /// the outputs (rank 0).
    struct Stages {
        double read = 0, hessians = 0, quantize = 0, losses = 0, persist = 0, outputs = 0;
    } stages;
    std::vector<std::filesystem::path> outputs;
};

/// Runs the whole flow. Throws invalid_argument / io_error (naming the file, tensor or option)
/// before anything is written for bad input found by the checks up front, and leaves every
/// finished linear persisted (a rerun resumes) for errors found later.
Report quantize_checkpoint(const Options& options, Communicator& comm);
inline Report quantize_checkpoint(const Options& options) {
    Communicator single;
    return quantize_checkpoint(options, single);
}

/// The seed of a linear's +had rotations: FNV-1a of its weight tensor's name.
std::uint64_t rotation_seed(const std::string& weight);

/// tr(W H W^T), the denominator of the reported relative loss: vqlib::proxy_loss_f32 (float32
/// products, within about 1e-6 of the float64 figure; half the time of proxy_loss).
double weight_energy(const MatrixXf& W, const MatrixXd& H);

/// The summary table.
void print_report(const Report& report, std::ostream& out);

/// A small Llama-shaped checkpoint (two shards, BF16, config.json) and its Hessians, generated
/// deterministically under `dir` (model/ and hessians/), for --demo and the tests.
void write_demo_inputs(const std::filesystem::path& dir);

}  // namespace vqlib::quantize
