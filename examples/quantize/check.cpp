// vqlib_quantize_check: vqlib-quantize against the library's per-layer calls, on the demo
// checkpoint (write_demo_inputs): bit-identical weights, the same bpw and losses; the VPTQ export;
// resume after a kill; the errors; and, when built, mpirun -np 2 byte-identical to one process.
#include "tool.hpp"

#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace vqlib;
using namespace vqlib::quantize;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
    std::cout << (ok ? "ok    " : "FAIL  ") << what << "\n";
    if (!ok) ++failures;
}

std::string bytes_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Options base(const fs::path& dir, const std::string& out) {
    Options o;
    o.model = dir / "inputs" / "model";
    o.hessians = dir / "inputs" / "hessians";
    o.out = dir / out;
    o.quiet = true;
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: vqlib_quantize_check VQLIB_QUANTIZE [MPIRUN VQLIB_QUANTIZE_MPI]\n";
        return 2;
    }
    const fs::path dir = fs::temp_directory_path() / ("vqlib-quantize-check-" + std::to_string(getpid()));
    fs::remove_all(dir);
    write_demo_inputs(dir / "inputs");
    const auto model = io::ModelCheckpoint::open(dir / "inputs" / "model");
    const HessianStore store(dir / "inputs" / "hessians", HessianStore::default_groups());

    // 1. Every method, all 14 linears: the tool's layers, dequantized output and report against
    //    the library's own calls on the same W and H.
    Options all = base(dir, "all");
    all.method = "gptq:w4g128";
    all.overrides = {{"*.self_attn.o_proj.*", "gptvq:2d-2.125"}, {"*.mlp.down_proj.*", "vptq:v4k256"},
                     {"*.mlp.up_proj.*", "pvq:3.25"}, {"*.self_attn.k_proj.*", "gptq:w3g128-act+had"}};
    all.dequantized = io::Dtype::F32;
    const Report report = quantize_checkpoint(all);
    expect(report.linears.size() == 14, "14 linears quantized (" + std::to_string(report.linears.size()) + ")");
    expect(report.kept.size() == 2, "embeddings and head kept as they are");
    const auto layers = io::load_layer_checkpoint(all.out / "model.vqlib.safetensors");
    const auto deq = io::read_safetensors(all.out / "dequantized" / "model.safetensors");
    const auto vq = io::read_safetensors(all.out / "model.vqlib.safetensors");
    const auto meta = nlohmann::json::parse(vq.metadata.at("vqlib-quantize")).at("linears");
    bool identical = true, same_report = true, copied = true;
    for (const LinearReport& r : report.linears) {
        const MethodSpec spec = parse_method(r.method);
        const MatrixXf W = model.read_matrix(r.name);
        const MatrixXd H = HessianStore::load(*store.find(r.name), W.cols(), r.name);
        const Outcome o = spec(W, H, rotation_seed(r.name));
        const MatrixXf Q = dequantize(o);
        const std::string lname = r.name.substr(0, r.name.size() - 7);
        const MatrixXf Qtool = dequantize(layers.at(lname), o.rotation);
        const auto values = deq.tensors.at(r.name).to_floats();
        const MatrixXf Qdeq = Eigen::Map<const RowMajorMatrixXf>(values.data(), Q.rows(), Q.cols());
        if (!(Q == Qtool) || !(Q == Qdeq)) {
            identical = false;
            std::cout << "  differs: " << r.name << " (" << r.method << ")\n";
        }
        const double e = weight_energy(W, H);
        if (r.bits_per_weight != o.bits_per_weight || r.proxy_loss != o.proxy_loss || r.relative_loss != o.proxy_loss / e ||
            meta.at(r.name).at("bits_per_weight").get<double>() != o.bits_per_weight) {
            same_report = false;
            std::cout << "  report differs: " << r.name << "\n";
        }
    }
    for (const std::string& name : model.names())
        if (!layers.count(name.substr(0, name.size() - 7)) || !name.ends_with(".weight"))
            copied = copied && deq.tensors.at(name) == model.read(name) && vq.tensors.at(name) == model.read(name);
    expect(identical, "every linear's layer and dequantized weight bit-identical to the library call (all 4 families, +had)");
    expect(same_report, "report bpw, proxy and relative losses equal the library's");
    expect(copied, "every other tensor copied bit for bit (vqlib and dequantized outputs)");

    // 2. Resume after a kill: a child killed (SIGKILL) after 5 linears, then a rerun; bytes equal.
    {
        Options o = all;
        o.out = dir / "killed";
        // The program itself, killed by its test hook after 5 linears (SIGKILL: no cleanup runs).
        std::string command = "VQLIB_QUANTIZE_KILL_AFTER=5 " + std::string(argv[1]) + " --quiet --model " +
                              o.model.string() + " --hessians " + o.hessians.string() + " --out " + o.out.string() +
                              " --method " + o.method + " --dequantized f32";
        for (const auto& [p, t] : o.overrides) command += " --override '" + p + "=" + t + "'";
        const int status = std::system(command.c_str());
        expect(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL, "vqlib-quantize killed mid-run");
        expect(!fs::exists(o.out / "model.vqlib.safetensors"), "no output file after the kill");
        const Report resumed = quantize_checkpoint(o);
        std::size_t skipped = 0;
        for (const auto& r : resumed.linears) skipped += r.resumed ? 1 : 0;
        std::cout << "info  the rerun resumed " << skipped << " persisted linears\n";
        expect(bytes_of(o.out / "model.vqlib.safetensors") == bytes_of(all.out / "model.vqlib.safetensors") &&
                   bytes_of(o.out / "dequantized/model.safetensors") == bytes_of(all.out / "dequantized/model.safetensors"),
               "resumed run byte-identical to an uninterrupted one");
        bool no_temp = true;
        for (const auto& e : fs::recursive_directory_iterator(o.out))
            no_temp = no_temp && e.path().filename().string().find(".tmp") == std::string::npos;
        expect(no_temp, "no temporary file left behind");
    }

    // 3. A VPTQ export that VPTQ's stack loads: complete config.json, identity norms, same Q.
    {
        Options o = base(dir, "vptq");
        o.method = "vptq:v4k256";
        o.include = {"*_proj.weight"};
        o.vptq = true;
        const Report r = quantize_checkpoint(o);
        const auto config = nlohmann::json::parse(bytes_of(o.out / "vptq" / "config.json"));
        expect(config.at("model_type") == "llama" && config.at("hidden_size") == 256 &&
                   config.at("quantization_config").at("quant_method") == "vptq" &&
                   config.at("quantization_config").at("config_for_layers").size() == 14,
               "VPTQ config.json: the base model's config with quantization_config for 14 layers");
        const auto st = io::read_safetensors(o.out / "vptq" / "model.safetensors");
        const auto qc = io::vptq_config_from_model_config(config);
        const auto mine = io::load_layer_checkpoint(o.out / "model.vqlib.safetensors");
        bool same = true, norms = true;
        for (const auto& [prefix, lc] : qc.config_for_layers) {
            const VptqLayer back = io::read_vptq_layer(st.tensors, prefix, lc);
            same = same && back.dequantize() == std::get<VptqLayer>(mine.at(prefix)).dequantize();
            norms = norms && lc.enable_norm && st.tensors.count(prefix + ".weight_scale") &&
                    st.tensors.count(prefix + ".weight_bias");
        }
        expect(same, "every VPTQ layer reloads from the VPTQ checkpoint to the same Q");
        expect(norms, "weight_scale / weight_bias written (identity) for VPTQ's CUDA kernels");
        expect(st.tensors.count("model.embed_tokens.weight") && st.tensors.count("lm_head.weight") &&
                   st.tensors.count("model.norm.weight"),
               "non-quantized tensors present under their names");
        bool warned = false;
        for (const auto& w : r.warnings) warned = warned || contains(w, "in_features = 256");
        expect(warned, "warns of layers outside VPTQ's CUDA GEMV (in_features <= 256)");
        Options bf = o;
        bf.out = dir / "vptq-bf16";
        bf.vptq_dtype = io::Dtype::BF16;
        const std::string e = error_of([&] { quantize_checkpoint(bf); });
        expect(contains(e, "--vptq-dtype bf16") && contains(e, "does not reload"), "BF16 VPTQ export refused: " + e);
        expect(!fs::exists(bf.out / "vptq" / "model.safetensors"), "nothing written for the refused export");
    }

    // 4. Errors, each naming what is wrong, nothing written.
    {
        Options o = base(dir, "err-method");
        o.method = "gptq:w9g128";
        const std::string e1 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e1, "gptq:w9g128") && contains(e1, "[2, 8]") && !fs::exists(o.out), "bad spec: " + e1);
        o = base(dir, "err-missing");
        o.include = {"*.weight"};
        const std::string e2 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e2, "lm_head.weight") || contains(e2, "embed_tokens"), "included weight without Hessian: " + e2);
        o.skip_missing = true;
        o.include = {"model.layers.0.*"};
        o.out = dir / "err-skip";
        expect(quantize_checkpoint(o).linears.size() == 7, "--skip-missing / --include narrow to layer 0");
        o = base(dir, "all");
        o.method = "gptq:w3g128";
        const std::string e3 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e3, "another run") && contains(e3, "--overwrite"), "existing output of another run: " + e3);
        fs::create_directories(dir / "foreign");
        { std::ofstream(dir / "foreign" / "precious.txt") << "x"; }
        o.out = dir / "foreign";
        o.overwrite = true;
        const std::string e4 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e4, "not a vqlib-quantize output") && fs::exists(dir / "foreign" / "precious.txt"),
               "a foreign directory is never deleted: " + e4);
        // A broken index and a truncated shard.
        const fs::path broken = dir / "broken";
        fs::create_directories(broken);
        for (const auto& f : fs::directory_iterator(dir / "inputs" / "model")) fs::copy(f.path(), broken / f.path().filename());
        std::string index = bytes_of(broken / "model.safetensors.index.json");
        index.replace(index.find("model-00002-of-00002"), 20, "model-00003-of-00002");
        { std::ofstream(broken / "model.safetensors.index.json", std::ios::binary) << index; }
        o = base(dir, "err-index");
        o.model = broken;
        const std::string e5 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e5, "model-00003-of-00002") && contains(e5, "does not exist"), "index naming a missing shard: " + e5);
        fs::copy(dir / "inputs" / "model" / "model.safetensors.index.json", broken / "model.safetensors.index.json",
                 fs::copy_options::overwrite_existing);
        fs::resize_file(broken / "model-00002-of-00002.safetensors", fs::file_size(broken / "model-00002-of-00002.safetensors") - 100);
        const std::string e6 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e6, "model-00002-of-00002") && !fs::exists(o.out), "truncated shard: " + e6);
        // A Hessian of the wrong size.
        const fs::path hs = dir / "hessians-bad";
        fs::copy(dir / "inputs" / "hessians", hs);
        fs::copy(hs / "model.layers.0.self_attn.o_proj.safetensors", hs / "model.layers.0.mlp.down_proj.npy.tmp");
        fs::remove(hs / "model.layers.0.mlp.down_proj.npy");
        fs::rename(hs / "model.layers.0.mlp.down_proj.npy.tmp", hs / "model.layers.0.mlp.down_proj.safetensors");
        o = base(dir, "err-hessian");
        o.hessians = hs;
        const std::string e7 = error_of([&] { quantize_checkpoint(o); });
        expect(contains(e7, "down_proj") && contains(e7, "512") && !fs::exists(o.out), "Hessian of the wrong size: " + e7);
    }

    // 5. mpirun -np 2 (when vqlib-quantize-mpi was built and mpirun exists): byte-identical.
    if (argc >= 4) {
        const std::string mpirun = argv[2], exe = argv[3];
        const fs::path out = dir / "mpi";
        std::string command = mpirun + " --allow-run-as-root --oversubscribe -np 2 " + exe + " --quiet --model " +
                              all.model.string() + " --hessians " + all.hessians.string() + " --out " + out.string() +
                              " --method " + all.method + " --dequantized f32";
        for (const auto& [p, t] : all.overrides) command += " --override '" + p + "=" + t + "'";
        command += " > " + (dir / "mpi.log").string() + " 2>&1";
        const int rc = std::system(command.c_str());
        expect(rc == 0, "mpirun -np 2 ran (" + command + ")");
        if (rc != 0) std::cout << bytes_of(dir / "mpi.log");
        expect(bytes_of(out / "model.vqlib.safetensors") == bytes_of(all.out / "model.vqlib.safetensors") &&
                   bytes_of(out / "dequantized/model.safetensors") == bytes_of(all.out / "dequantized/model.safetensors"),
               "mpirun -np 2 output byte-identical to one process");
    } else {
        std::cout << "skip  mpirun -np 2 (vqlib-quantize-mpi not built: -DVQLIB_QUANTIZE_MPI=ON)\n";
    }

    fs::remove_all(dir);
    std::cout << (failures ? "FAILED: " + std::to_string(failures) + " checks\n" : "all checks passed\n");
    return failures ? 1 : 0;
}
