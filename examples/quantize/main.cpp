// vqlib-quantize: whole checkpoints in, quantized checkpoints out (docs/quantize.md).
#include "tool.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <algorithm>
#include <string>
#include <thread>
#include <unistd.h>

#ifdef VQLIB_QUANTIZE_MPI
#include <mpi.h>
#endif

namespace {

using namespace vqlib::quantize;

constexpr const char* usage = R"(usage: vqlib-quantize --model PATH --hessians DIR --out DIR [options]
       vqlib-quantize --demo [DIR]

  --model PATH          a .safetensors file, a model.safetensors.index.json, or a directory of either
  --hessians DIR        one Hessian per linear or per shared input (.safetensors or .npy, F32/F64)
  --out DIR             output directory (a rerun of the same command resumes it)
  --method SPEC         every linear's method (default gptq:w4g128): gptq:w4g128[-act][-sym],
                        gptvq:2d-2.125[@best|@ref], vptq:v8k65536[r256], pvq:[d64-]3.25[@best|@paper],
                        any of them +had (randomized-Hadamard incoherence)
  --override PAT=SPEC   linears whose tensor name matches the glob PAT take SPEC (the last match wins)
  --include PAT         quantize the 2-D tensors matching PAT (each must have a Hessian); repeatable
  --exclude PAT         leave the tensors matching PAT as they are; repeatable
  --share A,B,C         linears A, B, C under one parent read the same input (replaces the default
                        groups q_proj,k_proj,v_proj and gate_proj,up_proj); repeatable; --share none
  --skip-missing        leave included tensors without a Hessian unquantized instead of failing
  --vptq                also write <out>/vptq: a checkpoint the HF + vptq stack loads
  --vptq-dtype f16|bf16 its floating-point dtype (default f16)
  --dequantized DTYPE   also write <out>/dequantized in f32, f16 or bf16
  --overwrite           replace an output directory holding another run's output
  --threads N           threads (default: all cores)
  --quiet               no progress lines
)";

vqlib::io::Dtype parse_dtype(const std::string& option, const std::string& v) {
    if (v == "f32" || v == "F32") return vqlib::io::Dtype::F32;
    if (v == "f16" || v == "F16") return vqlib::io::Dtype::F16;
    if (v == "bf16" || v == "BF16") return vqlib::io::Dtype::BF16;
    throw vqlib::invalid_argument(option + " \"" + v + "\": expected f32, f16 or bf16");
}

#ifdef VQLIB_QUANTIZE_MPI
struct MpiCommunicator : Communicator {
    int rank() const override {
        int r = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        return r;
    }
    int size() const override {
        int s = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &s);
        return s;
    }
    void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
    bool all(bool ok) override {
        int mine = ok ? 1 : 0, every = 0;
        MPI_Allreduce(&mine, &every, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        return every == 1;
    }
};
#endif

extern "C" void on_signal(int sig) {
    static const char message[] =
        "\nvqlib-quantize: interrupted; every finished linear is saved, rerun the same command to resume\n";
    [[maybe_unused]] const auto written = write(STDERR_FILENO, message, sizeof message - 1);
    _exit(128 + sig);
}

int run(int argc, char** argv, Communicator& comm) {
    Options opt;
    bool demo = false, share_set = false;
    std::filesystem::path demo_dir;
    for (int k = 1; k < argc; ++k) {
        const std::string a = argv[k];
        const auto value = [&]() -> std::string {
            if (k + 1 >= argc) throw vqlib::invalid_argument(a + ": expected a value after it");
            return argv[++k];
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return 0;
        } else if (a == "--model") opt.model = value();
        else if (a == "--hessians") opt.hessians = value();
        else if (a == "--out") opt.out = value();
        else if (a == "--method") opt.method = value();
        else if (a == "--override") {
            const std::string v = value();
            const auto eq = v.rfind('=');
            if (eq == std::string::npos || eq == 0)
                throw vqlib::invalid_argument("--override \"" + v + "\": expected PATTERN=SPEC");
            opt.overrides.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        } else if (a == "--include") opt.include.push_back(value());
        else if (a == "--exclude") opt.exclude.push_back(value());
        else if (a == "--share") {
            const std::string v = value();
            if (!share_set) opt.share.clear(), share_set = true;
            if (v == "none") continue;
            std::vector<std::string> group;
            std::string::size_type from = 0;
            for (;;) {
                const auto comma = v.find(',', from);
                group.push_back(v.substr(from, comma - from));
                if (comma == std::string::npos) break;
                from = comma + 1;
            }
            for (const auto& g : group)
                if (g.empty()) throw vqlib::invalid_argument("--share \"" + v + "\": an empty name");
            opt.share.push_back(group);
        } else if (a == "--skip-missing") opt.skip_missing = true;
        else if (a == "--vptq") opt.vptq = true;
        else if (a == "--vptq-dtype") opt.vptq_dtype = parse_dtype(a, value());
        else if (a == "--dequantized") opt.dequantized = parse_dtype(a, value());
        else if (a == "--overwrite") opt.overwrite = true;
        else if (a == "--threads") {
            const std::string v = value();
            char* end = nullptr;
            const long t = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || t < 0 || t > 4096)
                throw vqlib::invalid_argument("--threads \"" + v + "\": expected an integer in [0, 4096]");
            opt.threads = static_cast<int>(t);
        } else if (a == "--quiet") opt.quiet = true;
        else if (a == "--demo") {
            demo = true;
            if (k + 1 < argc && argv[k + 1][0] != '-') demo_dir = argv[++k];
        } else throw vqlib::invalid_argument("unknown option \"" + a + "\" (see --help)");
    }
    if (comm.size() > 1 && opt.threads == 0) {
        // Ranks on one machine share its cores.
        const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        const int ranks = local ? std::max(1, std::atoi(local)) : 1;
        opt.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks);
    }
    if (demo) {
        if (demo_dir.empty()) demo_dir = "vqlib-quantize-demo";
        if (comm.rank() == 0) {
            std::cout << "demo: a 2-layer Llama-shaped checkpoint (BF16, two shards) and its Hessians in "
                      << (demo_dir / "inputs").string() << "\n";
            write_demo_inputs(demo_dir / "inputs");
        }
        comm.barrier();
        opt.model = demo_dir / "inputs" / "model";
        opt.hessians = demo_dir / "inputs" / "hessians";
        opt.out = demo_dir / "out";
        opt.overwrite = true;
        if (opt.overrides.empty()) {
            opt.overrides = {{"*.mlp.*", "gptvq:2d-3.125"}, {"*.self_attn.v_proj.*", "pvq:3.25"}};
            opt.dequantized = vqlib::io::Dtype::F32;
        }
        std::cout << "demo: --method " << opt.method << " --override '*.mlp.*=gptvq:2d-3.125' --override "
                  << "'*.self_attn.v_proj.*=pvq:3.25' --dequantized f32 --out " << opt.out.string() << "\n";
    }
    // Test hook: kill this process (SIGKILL, no cleanup) after it persisted N linears.
    if (const char* kill_after = std::getenv("VQLIB_QUANTIZE_KILL_AFTER")) {
        const std::size_t n = static_cast<std::size_t>(std::max(1, std::atoi(kill_after)));
        opt.after_linear = [n](std::size_t done) {
            if (done >= n) std::raise(SIGKILL);
        };
    }
    const Report report = quantize_checkpoint(opt, comm);
    if (comm.rank() == 0) print_report(report, std::cout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
#ifdef VQLIB_QUANTIZE_MPI
    MPI_Init(&argc, &argv);
    MpiCommunicator comm;
#else
    Communicator comm;
#endif
    int rc = 1;
    try {
        rc = run(argc, argv, comm);
    } catch (const std::exception& e) {
        std::cerr << "vqlib-quantize: " << (comm.size() > 1 ? "rank " + std::to_string(comm.rank()) + ": " : "")
                  << e.what() << "\n";
#ifdef VQLIB_QUANTIZE_MPI
        if (comm.size() > 1) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
        rc = 1;
    }
#ifdef VQLIB_QUANTIZE_MPI
    MPI_Finalize();
#endif
    return rc;
}
