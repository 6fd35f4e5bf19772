#include "tool.hpp"

#include <vqlib/core/threading.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/io/temporary_file.hpp>
#include <vqlib/io/vptq_checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fnmatch.h>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>
#include <unistd.h>

namespace vqlib::quantize {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* manifest_name = "vqlib-quantize.json";
constexpr const char* report_key = "vqlib-quantize";

bool glob(const std::string& pattern, const std::string& name) {
    return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::uint64_t fnv1a(const void* data, std::size_t size, std::uint64_t h = 0xcbf29ce484222325ULL) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t k = 0; k < size; ++k) h = (h ^ p[k]) * 0x100000001b3ULL;
    return h;
}
std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 0xcbf29ce484222325ULL) { return fnv1a(s.data(), s.size(), h); }

std::string hex(std::uint64_t v) {
    std::ostringstream out;
    out << std::hex << std::setw(16) << std::setfill('0') << v;
    return out.str();
}

std::string layer_name(const std::string& weight) {
    return weight.ends_with(".weight") ? weight.substr(0, weight.size() - 7) : weight;
}

/// A file name for a tensor name: the name itself when it is safe, else a hash of it.
std::string part_file(const std::string& weight) {
    const bool safe = !weight.empty() && weight.size() < 200 && weight[0] != '.' &&
                      std::all_of(weight.begin(), weight.end(), [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
                      });
    return (safe ? weight : "h" + hex(fnv1a(weight))) + ".safetensors";
}

void write_text(const fs::path& path, const std::string& text) {
    io::detail::temporary_file out(path, "text");
    out.write(text.data(), text.size());
    out.commit();
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    VQLIB_CHECK(in.good(), io_error, "cannot open '", path.string(), "' for reading");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The loss of Q: vqlib's proxy_loss (the same for any thread count).
double loss_of(const MatrixXf& W, const MatrixXf& Q, const MatrixXd& H) { return vqlib::proxy_loss(W, Q, H); }

/// Q as the dequantized output stores it (rounded to the dtype and back).
MatrixXf rounded(const MatrixXf& Q, io::Dtype dtype) {
    if (dtype == io::Dtype::F32) return Q;
    const io::Tensor t = io::Tensor::from_matrix(Q, dtype);
    const std::vector<float> back = t.to_floats();
    return Eigen::Map<const RowMajorMatrixXf>(back.data(), Q.rows(), Q.cols());
}

std::string dtype_lower(io::Dtype d) {
    std::string s(io::dtype_name(d));
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

json rotation_json(const std::optional<transform::IncoherenceOptions>& r) {
    if (!r) return nullptr;
    return {{"seed", r->seed}, {"rotate_inputs", r->rotate_inputs}, {"rotate_outputs", r->rotate_outputs},
            {"odd_factor", r->odd_factor == transform::OddFactorPolicy::hadamard_only ? "hadamard_only" : "hartley"}};
}

std::optional<transform::IncoherenceOptions> rotation_from(const json& j) {
    if (j.is_null()) return std::nullopt;
    transform::IncoherenceOptions o;
    o.seed = j.at("seed").get<std::uint64_t>();
    o.rotate_inputs = j.at("rotate_inputs").get<bool>();
    o.rotate_outputs = j.at("rotate_outputs").get<bool>();
    o.odd_factor = j.at("odd_factor").get<std::string>() == "hadamard_only" ? transform::OddFactorPolicy::hadamard_only
                                                                          : transform::OddFactorPolicy::hartley_fallback;
    return o;
}

/// One linear of the plan.
struct Item {
    std::string name;
    Index rows = 0, cols = 0;
    const MethodSpec* spec = nullptr;
    fs::path hessian;
    double cost = 0;
    int rank = 0;
};

/// A persisted linear: its layer and what the report says of it.
struct Part {
    io::QuantizedLayer layer;
    json info;
};

Part read_part(const fs::path& file, const std::string& layer) {
    const io::SafetensorsFile st = io::read_safetensors(file);
    auto layers = io::layers_from_checkpoint(st);
    const auto it = layers.find(layer);
    VQLIB_CHECK(it != layers.end() && st.metadata.count(report_key), io_error, "part '", file.string(),
                "' does not hold layer '", layer, "'");
    return {std::move(it->second), json::parse(st.metadata.at(report_key))};
}

/// Terminal progress: a bar with ETA on a TTY, plain lines otherwise.
class Progress {
public:
    Progress(double total, std::size_t count, bool quiet, int rank)
        : total_(total), count_(count), quiet_(quiet), rank_(rank), tty_(isatty(fileno(stderr)) != 0),
          start_(std::chrono::steady_clock::now()) {}
    void step(const LinearReport& r, double cost) {
        done_ += cost;
        ++finished_;
        if (quiet_) return;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double eta = done_ > 0 ? elapsed * (total_ - done_) / done_ : 0;
        const int eta_s = static_cast<int>(std::lround(eta));
        char line[512];
        std::snprintf(line, sizeof line, "[%zu/%zu] %-40s %-22s %6.3f bpw  rel %.3e  %6.1fs%s  ETA %d:%02d",
                      finished_, count_, r.name.c_str(), r.method.c_str(),
                      r.bits_per_weight, r.relative_loss, r.seconds, r.resumed ? " (resumed)" : "", eta_s / 60,
                      eta_s % 60);
        if (tty_) {
            const int width = 24;
            const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
            std::fprintf(stderr, "\r\033[K[%s%s] %s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                         std::string(static_cast<std::size_t>(width - filled), '.').c_str(), line);
            if (finished_ == count_) std::fputc('\n', stderr);
        } else {
            if (rank_ > 0) std::fprintf(stderr, "rank %d: ", rank_);
            std::fprintf(stderr, "%s\n", line);
        }
        std::fflush(stderr);
    }

private:
    double total_, done_ = 0;
    std::size_t count_, finished_ = 0;
    bool quiet_;
    int rank_;
    bool tty_;
    std::chrono::steady_clock::time_point start_;
};

/// VPTQ's CUDA kernels' dispatch lists (microsoft/VPTQ csrc/dequant.cu, quant_gemv.cu).
void vptq_dispatch_warnings(const std::string& name, const VptqLayer& layer, std::vector<std::string>& out) {
    const VptqLayout& L = layer.layout;
    const auto bits = [](Index k) { return static_cast<int>(std::lround(std::log2(static_cast<double>(k)))); };
    const std::set<Index> lens{2, 4, 6, 8, 10, 12, 16};
    const std::set<int> main_bits{4, 8, 10, 12, 13, 14, 15, 16};
    const std::set<int> res_bits{0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16};
    const int ib = bits(L.num_centroids), rb = L.has_residual() ? bits(L.num_res_centroids) : 0;
    if (!lens.count(L.vector_len))
        out.push_back(::vqlib::detail::concat(name, ": vector length ", L.vector_len,
                                              " is outside VPTQ's CUDA kernels' list {2,4,6,8,10,12,16}"));
    if (!main_bits.count(ib))
        out.push_back(::vqlib::detail::concat(name, ": ", ib, "-bit indices (", L.num_centroids,
                                              " centroids) are outside VPTQ's CUDA kernels' list {4,8,10,12,13,14,15,16}"));
    if (!res_bits.count(rb))
        out.push_back(::vqlib::detail::concat(name, ": ", rb, "-bit residual indices are outside VPTQ's CUDA kernels' list"));
    if (rb > ib)
        out.push_back(::vqlib::detail::concat(name, ": residual indices (", rb, " bits) are wider than the main ones (", ib,
                                              " bits): VPTQ's Python unpacker masks them with the main width "
                                              "(its CUDA kernels read them right)"));
    if (L.has_outliers() && L.outlier_vector_len != 4)
        out.push_back(::vqlib::detail::concat(name, ": outlier vector length ", L.outlier_vector_len,
                                              ": VPTQ's CUDA GEMV takes 4 only"));
    if (L.in_features <= 256)
        out.push_back(::vqlib::detail::concat(name, ": in_features = ", L.in_features,
                                              ": VPTQ's CUDA GEMV needs more than 256 (its dequantize path works)"));
}

/// Files of a model directory an inference stack needs besides the weights (tokenizer, ...).
std::vector<fs::path> auxiliary_files(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        if (!e.is_regular_file() || f.ends_with(".safetensors") || f.ends_with(".index.json") || f == "config.json" ||
            f.ends_with(".bin") || f.ends_with(".pt") || f.ends_with(".pth") || f[0] == '.')
            continue;
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void copy_atomically(const fs::path& from, const fs::path& to) { write_text(to, read_text(from)); }

}  // namespace

Report quantize_checkpoint(const Options& opt, Communicator& comm) {
    const auto start = std::chrono::steady_clock::now();
    Report report;
    // ---- Checks up front: nothing is written before they pass. -------------------------------
    VQLIB_CHECK(!opt.model.empty(), invalid_argument, "--model: no checkpoint given");
    VQLIB_CHECK(!opt.hessians.empty(), invalid_argument, "--hessians: no Hessian directory given");
    VQLIB_CHECK(!opt.out.empty(), invalid_argument, "--out: no output directory given");
    VQLIB_CHECK(opt.threads >= 0, invalid_argument, "--threads ", opt.threads, ": expected >= 0");
    VQLIB_CHECK(opt.vptq_dtype == io::Dtype::F16 || opt.vptq_dtype == io::Dtype::BF16, invalid_argument,
                "--vptq-dtype ", io::dtype_name(opt.vptq_dtype), ": expected f16 or bf16 (VPTQ's kernels)");
    if (opt.dequantized)
        VQLIB_CHECK(*opt.dequantized == io::Dtype::F32 || *opt.dequantized == io::Dtype::F16 ||
                        *opt.dequantized == io::Dtype::BF16,
                    invalid_argument, "--dequantized ", io::dtype_name(*opt.dequantized), ": expected f32, f16 or bf16");
    set_num_threads(opt.threads);

    std::map<std::string, MethodSpec> specs;  // by text
    const auto spec_of = [&](const std::string& text) -> const MethodSpec& {
        auto it = specs.find(text);
        if (it == specs.end()) it = specs.emplace(text, parse_method(text)).first;
        return it->second;
    };
    spec_of(opt.method);
    for (const auto& [pattern, text] : opt.overrides) {
        VQLIB_CHECK(!pattern.empty(), invalid_argument, "--override \"=", text, "\": empty pattern");
        spec_of(text);
    }

    const io::ModelCheckpoint model = io::ModelCheckpoint::open(opt.model);
    const HessianStore hessians(opt.hessians, opt.share);
    std::vector<Item> items;
    std::set<std::string> included_seen;
    for (const std::string& name : model.names()) {
        const io::TensorInfo& info = model.info(name);
        const bool matrix = info.shape.size() == 2 && (info.dtype == io::Dtype::F32 || info.dtype == io::Dtype::F16 ||
                                                       info.dtype == io::Dtype::BF16);
        bool included = opt.include.empty();
        for (const auto& p : opt.include)
            if (glob(p, name)) included = true, included_seen.insert(p);
        bool excluded = false;
        for (const auto& p : opt.exclude) excluded = excluded || glob(p, name);
        if (!included || excluded) {
            if (matrix) report.kept.emplace_back(name, excluded ? "excluded" : "not included");
            continue;
        }
        if (!matrix) {
            VQLIB_CHECK(opt.include.empty() || info.shape.size() != 2, io_error, "tensor '", name, "' has dtype ",
                        io::dtype_name(info.dtype), ": a weight to quantize must be F32, F16 or BF16");
            continue;
        }
        const auto file = hessians.find(name);
        if (!file) {
            VQLIB_CHECK(opt.include.empty() || opt.skip_missing, io_error, "tensor '", name,
                        "': no Hessian for it in '", hessians.directory().string(),
                        "' (looked for ", layer_name(name), ".safetensors/.npy, input_of metadata and the sharing "
                        "groups); pass --skip-missing to leave it unquantized");
            report.kept.emplace_back(name, "no Hessian");
            continue;
        }
        Item item;
        item.name = name;
        item.rows = static_cast<Index>(info.shape[0]);
        item.cols = static_cast<Index>(info.shape[1]);
        item.hessian = *file;
        const std::string* text = &opt.method;
        for (const auto& [pattern, t] : opt.overrides)
            if (glob(pattern, name)) text = &t;
        item.spec = &spec_of(*text);
        const double r = static_cast<double>(item.rows), c = static_cast<double>(item.cols);
        item.cost = c * c * c / 3 + r * c * c * item.spec->work_per_weight;
        // The Hessian's shape, from its header, before any work.
        if (file->extension() == ".npy") {
            vqlib::detail::npy_reader reader(*file);
            VQLIB_CHECK(reader.header().rows == item.cols && reader.header().cols == item.cols, io_error, "Hessian '",
                        file->string(), "' is ", reader.header().rows, "x", reader.header().cols, ": weight '", name,
                        "' has ", item.cols, " columns");
        } else {
            // A safetensors Hessian: some 2-D tensor of the right size (which one, when loaded).
            const io::SafetensorsHeader h = io::read_safetensors_header(*file);
            bool fits = false;
            for (const auto& [n, i] : h.tensors)
                fits = fits || (i.shape.size() == 2 && i.shape[0] == item.cols && i.shape[1] == item.cols);
            VQLIB_CHECK(fits, io_error, "Hessian '", file->string(), "' holds no ", item.cols, "x", item.cols,
                        " matrix: weight '", name, "' has ", item.cols, " columns");
        }
        items.push_back(std::move(item));
    }
    for (const auto& p : opt.include)
        VQLIB_CHECK(included_seen.count(p), invalid_argument, "--include \"", p, "\": matches no tensor of the checkpoint");
    VQLIB_CHECK(!items.empty(), invalid_argument, "no tensor to quantize: no 2-D weight of '", opt.model.string(),
                "' has a Hessian in '", opt.hessians.string(), "'");
    if (opt.vptq)
        for (const Item& it : items)
            VQLIB_CHECK(it.spec->family == "vptq" && !it.spec->rotated, invalid_argument, "--vptq: linear '", it.name,
                        "' is quantized with \"", it.spec->text,
                        "\": a VPTQ checkpoint holds VPTQ layers without incoherence rotations only");
    json base_config;
    if (opt.vptq) {
        const fs::path config = model.directory() / "config.json";
        VQLIB_CHECK(fs::exists(config), io_error, "--vptq: '", config.string(),
                    "' does not exist: the VPTQ checkpoint's config.json is the base model's with quantization_config");
        try {
            base_config = json::parse(read_text(config));
        } catch (const json::exception& e) {
            throw io_error(::vqlib::detail::concat("'", config.string(), "' is not valid JSON: ", e.what()));
        }
        VQLIB_CHECK(base_config.is_object(), io_error, "'", config.string(), "' is not a JSON object");
    }

    // ---- The output directory: new, or this same run's (resume). -----------------------------
    json manifest = {{"model", fs::absolute(opt.model).lexically_normal().string()},
                     {"hessians", fs::absolute(opt.hessians).lexically_normal().string()},
                     {"vptq", opt.vptq ? json(dtype_lower(opt.vptq_dtype)) : json(nullptr)},
                     {"dequantized", opt.dequantized ? json(dtype_lower(*opt.dequantized)) : json(nullptr)}};
    for (const Item& it : items) manifest["linears"][it.name] = {{"method", it.spec->text}, {"hessian", it.hessian.filename().string()}};
    const fs::path parts = opt.out / "parts";
    collectively(comm, "rank 0 could not prepare the output directory (see its message)", [&] {
        if (comm.rank() == 0) {
            std::error_code ec;
            if (fs::exists(opt.out, ec)) {
                VQLIB_CHECK(fs::is_directory(opt.out, ec), io_error, "--out '", opt.out.string(), "' exists and is not a directory");
                const bool ours = fs::exists(opt.out / manifest_name, ec);
                const bool empty = fs::is_empty(opt.out, ec);
                bool same = false;
                if (ours) {
                    try {
                        same = json::parse(read_text(opt.out / manifest_name)) == manifest;
                    } catch (const json::exception&) {
                    }
                }
                if (!empty && !same) {
                    VQLIB_CHECK(opt.overwrite, io_error, "--out '", opt.out.string(), "' exists",
                                ours ? " and holds another run's output" : " and is not empty",
                                ": pass --overwrite to replace it");
                    VQLIB_CHECK(ours, io_error, "--out '", opt.out.string(),
                                "' is not a vqlib-quantize output directory (no ", manifest_name,
                                "): refusing to delete it even with --overwrite");
                    fs::remove_all(opt.out);
                }
            }
            fs::create_directories(parts, ec);
            VQLIB_CHECK(!ec, io_error, "cannot create '", parts.string(), "': ", ec.message());
            // Leftovers of a killed run: temporary files are never renamed into place, remove them.
            for (const fs::path dir : {opt.out, parts})
                for (const auto& e : fs::directory_iterator(dir, ec))
                    if (e.path().filename().string().starts_with(".") && e.path().filename().string().find(".tmp") != std::string::npos)
                        fs::remove(e.path(), ec);
            write_text(opt.out / manifest_name, manifest.dump(1) + "\n");
        }
    });

    // ---- Balance: the longest first, each to the least loaded rank (deterministic). -----------
    {
        std::vector<std::size_t> order(items.size());
        for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return items[a].cost > items[b].cost; });
        std::vector<double> load(static_cast<std::size_t>(comm.size()), 0.0);
        for (std::size_t k : order) {
            const auto least = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
            items[k].rank = static_cast<int>(least);
            load[least] += items[k].cost;
        }
    }

    // ---- Quantize this rank's linears, one Hessian loaded once for all that share it. ---------
    std::vector<std::size_t> mine;
    double my_cost = 0;
    for (std::size_t k = 0; k < items.size(); ++k)
        if (items[k].rank == comm.rank()) mine.push_back(k), my_cost += items[k].cost;
    // Grouped by Hessian, then by spec: each Hessian loaded once, each preparation made once.
    std::stable_sort(mine.begin(), mine.end(), [&](std::size_t a, std::size_t b) {
        return std::tie(items[a].hessian, items[a].spec->text) < std::tie(items[b].hessian, items[b].spec->text);
    });
    Progress progress(my_cost, mine.size(), opt.quiet, comm.rank());
    fs::path loaded_file;
    MatrixXd H;
    std::string prepared_for;
    std::shared_ptr<const void> prepared;
    std::size_t persisted = 0;
    std::set<std::string> resumed;
    collectively(comm, "another rank failed (see its message); rerun to resume", [&] {
        for (std::size_t k : mine) {
            const Item& it = items[k];
            const fs::path part_path = parts / part_file(it.name);
            auto t = std::chrono::steady_clock::now();
            const auto lap = [&t](double& stage) {
                const auto now = std::chrono::steady_clock::now();
                stage += std::chrono::duration<double>(now - t).count();
                t = now;
            };
            const io::Tensor raw = model.read(it.name);
            const std::uint64_t file_size = fs::file_size(it.hessian);
            std::uint64_t fp = fnv1a(it.spec->text);
            fp = fnv1a(it.name, fp);
            fp = fnv1a(raw.data.data(), raw.data.size(), fp);
            fp = fnv1a(it.hessian.filename().string() + ":" + std::to_string(file_size), fp);
            LinearReport r;
            r.name = it.name;
            r.rows = it.rows;
            r.cols = it.cols;
            r.method = it.spec->text;
            r.hessian = it.hessian.filename().string();
            r.rank = comm.rank();
            if (fs::exists(part_path)) {
                try {
                    const Part p = read_part(part_path, layer_name(it.name));
                    if (p.info.at("fingerprint").get<std::string>() == hex(fp)) {
                        r.resumed = true;
                        resumed.insert(it.name);
                        r.seconds = p.info.at("seconds").get<double>();
                        r.bits_per_weight = p.info.at("bits_per_weight").get<double>();
                        r.relative_loss = p.info.at("relative_loss").get<double>();
                        lap(report.stages.read);
                        progress.step(r, it.cost);
                        continue;
                    }
                } catch (const std::exception&) {  // unreadable or stale: quantize again
                }
            }
            const MatrixXf W = model.to_matrix(it.name, raw);  // the bytes already read
            lap(report.stages.read);
            if (loaded_file != it.hessian) {
                prepared.reset();  // of the previous Hessian
                prepared_for.clear();
                H = HessianStore::load(it.hessian, it.cols, it.name);
                loaded_file = it.hessian;
            }
            lap(report.stages.hessians);
            // Linears that read the same input under the same (unrotated) spec share one prepared
            // Hessian: its cost is counted in the seconds of the linear that prepared it.
            Outcome o;
            if (it.spec->prepare && !it.spec->rotated) {
                const std::string key = it.hessian.string() + "\n" + it.spec->text;
                double prepare_seconds = 0;
                if (key != prepared_for) {
                    prepared.reset();  // one preparation in memory at a time
                    const auto p0 = std::chrono::steady_clock::now();
                    prepared = it.spec->prepare(H);
                    prepare_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
                    prepared_for = key;
                }
                // The recipe's own seconds may include the preparation's (gptq's do): timed
                // here instead, so that a shared preparation is counted once.
                const auto r0 = std::chrono::steady_clock::now();
                o = it.spec->run_prepared(W, H, prepared.get());
                o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count() + prepare_seconds;
            } else {
                o = (*it.spec)(W, H, rotation_seed(it.name));
            }
            lap(report.stages.quantize);
            r.bits_per_weight = o.bits_per_weight;
            r.proxy_loss = o.proxy_loss;
            const double e = weight_energy(W, H);
            r.relative_loss = e > 0 ? o.proxy_loss / e : 0;
            r.percdamp = o.percdamp;
            r.seconds = o.seconds;
            json info = {{"fingerprint", hex(fp)},       {"weight", it.name},
                         {"method", it.spec->text},      {"description", it.spec->description},
                         {"hessian", r.hessian},         {"rows", it.rows},
                         {"cols", it.cols},              {"bits_per_weight", r.bits_per_weight},
                         {"proxy_loss", r.proxy_loss},   {"relative_loss", r.relative_loss},
                         {"percdamp", r.percdamp},       {"seconds", r.seconds},
                         {"rotation", rotation_json(o.rotation)}};
            if (opt.dequantized && *opt.dequantized != io::Dtype::F32) {
                r.dequantized_loss = loss_of(W, rounded(dequantize(o), *opt.dequantized), H);
                info["dequantized_loss"] = *r.dequantized_loss;
            }
            lap(report.stages.losses);
            io::save_layer_checkpoint(part_path, {{layer_name(it.name), o.layer}}, {{report_key, info.dump()}});
            lap(report.stages.persist);
            progress.step(r, it.cost);
            ++persisted;
            if (opt.after_linear) opt.after_linear(persisted);
        }
    });
    if (comm.rank() != 0) return report;

    // ---- Rank 0: the report and the outputs, from the parts. ----------------------------------
    const auto outputs_start = std::chrono::steady_clock::now();
    std::map<std::string, json> infos;
    json layer_entries = json::object();
    std::set<std::string> quantized;
    std::vector<io::TensorSource> layer_sources;
    for (const Item& it : items) {
        const fs::path part_path = parts / part_file(it.name);
        const std::string lname = layer_name(it.name);
        const io::SafetensorsHeader header = io::read_safetensors_header(part_path);
        const json info = json::parse(header.metadata.at(report_key));
        const json layers = json::parse(header.metadata.at(io::layer_checkpoint_key));
        layer_entries[lname] = layers.at("layers").at(lname);
        for (const auto& [tname, tinfo] : header.tensors)
            layer_sources.push_back({tname, tinfo.dtype, tinfo.shape, [part_path, tname] {
                                         return io::read_safetensors(part_path, [&](const std::string& n) { return n == tname; })
                                             .tensors.at(tname);
                                     }});
        infos[it.name] = info;
        quantized.insert(it.name);
        LinearReport r;
        r.name = it.name;
        r.rows = it.rows;
        r.cols = it.cols;
        r.method = it.spec->text;
        r.hessian = info.at("hessian");
        r.bits_per_weight = info.at("bits_per_weight");
        r.proxy_loss = info.at("proxy_loss");
        r.relative_loss = info.at("relative_loss");
        r.percdamp = info.at("percdamp");
        r.seconds = info.at("seconds");
        r.rank = it.rank;
        r.resumed = resumed.count(it.name) != 0;  // this process's own (rank 0's, under MPI)
        if (info.contains("dequantized_loss")) r.dequantized_loss = info.at("dequantized_loss").get<double>();
        report.linears.push_back(r);
    }
    const auto copied = [&](const std::string& name) {
        const io::TensorInfo& info = model.info(name);
        return io::TensorSource{name, info.dtype, info.shape, [&model, name] { return model.read(name); }};
    };
    const auto layer_of = [&](const std::string& weight) {
        const fs::path part_path = parts / part_file(weight);
        Part p = read_part(part_path, layer_name(weight));
        return std::make_pair(std::move(p.layer), rotation_from(p.info.at("rotation")));
    };

    // vqlib's checkpoint: every layer, every other tensor as it was.
    {
        std::vector<io::TensorSource> sources = layer_sources;
        std::set<std::string> names;
        for (const auto& s : sources) names.insert(s.name);
        for (const std::string& name : model.names()) {
            if (quantized.count(name)) continue;
            VQLIB_CHECK(!names.count(name), io_error, "tensor '", name,
                        "' of the checkpoint has the name of a quantized layer's tensor");
            sources.push_back(copied(name));
        }
        json linears = json::object();
        for (const auto& [name, info] : infos)
            linears[name] = {{"layer", layer_name(name)},      {"method", info.at("method")},
                             {"bits_per_weight", info.at("bits_per_weight")}, {"proxy_loss", info.at("proxy_loss")},
                             {"relative_loss", info.at("relative_loss")},     {"rotation", info.at("rotation")}};
        const json doc = {{"format", "vqlib-layers"}, {"version", io::layer_checkpoint_version}, {"layers", layer_entries}};
        io::write_safetensors_streamed(opt.out / "model.vqlib.safetensors", std::move(sources),
                                       {{io::layer_checkpoint_key, doc.dump()},
                                        {report_key, json{{"format", "vqlib-quantize"}, {"linears", linears}}.dump()}});
        report.outputs.push_back(opt.out / "model.vqlib.safetensors");
        if (fs::exists(model.directory() / "config.json"))
            copy_atomically(model.directory() / "config.json", opt.out / "config.json");
    }

    // The dequantized model: the same tensors, each quantized weight replaced by its Q.
    if (opt.dequantized) {
        const fs::path dir = opt.out / "dequantized";
        fs::create_directories(dir);
        std::vector<io::TensorSource> sources;
        const io::Dtype dtype = *opt.dequantized;
        for (const std::string& name : model.names()) {
            if (!quantized.count(name)) {
                sources.push_back(copied(name));
                continue;
            }
            const io::TensorInfo& info = model.info(name);
            sources.push_back({name, dtype, info.shape, [&layer_of, name, dtype] {
                                   const auto [layer, rotation] = layer_of(name);
                                   return io::Tensor::from_matrix(dequantize(layer, rotation), dtype);
                               }});
        }
        io::write_safetensors_streamed(dir / "model.safetensors", std::move(sources), {{"format", "pt"}});
        for (const fs::path& f : auxiliary_files(model.directory())) copy_atomically(f, dir / f.filename());
        if (fs::exists(model.directory() / "config.json")) copy_atomically(model.directory() / "config.json", dir / "config.json");
        report.outputs.push_back(dir / "model.safetensors");
    }

    // VPTQ's checkpoint: the HF model with VQuantLinear modules.
    if (opt.vptq) {
        const fs::path dir = opt.out / "vptq";
        fs::create_directories(dir);
        io::VptqQuantizationConfig qc;
        std::vector<io::TensorSource> sources;
        for (const Item& it : items) {
            auto [layer, rotation] = layer_of(it.name);
            auto& v = std::get<VptqLayer>(layer);
            const MatrixXf Q = v.dequantize();  // what the reloaded export must give
            // VPTQ's CUDA kernels read weight_scale and weight_bias whether or not the layer was
            // normalized: an unnormalized layer gets the identity (1, 0), exactly.
            if (!v.layout.enable_norm) {
                v.layout.enable_norm = true;
                v.weight_scale = VectorXf::Ones(v.layout.in_features);
                v.weight_bias = VectorXf::Zero(v.layout.in_features);
            }
            const std::string prefix = layer_name(it.name);
            const std::string bias_name = prefix + ".bias";
            std::optional<VectorXf> bias;
            if (model.contains(bias_name)) {
                const auto values = model.read(bias_name).to_floats();
                bias = Eigen::Map<const VectorXf>(values.data(), static_cast<Index>(values.size()));
            }
            io::TensorMap tensors;
            io::add_vptq_layer(tensors, prefix, v, opt.vptq_dtype, bias ? &*bias : nullptr);
            // Refuse a dtype that does not hold the layer's values: the reloaded layer must give Q.
            const io::VptqLayerConfig lc = io::vptq_layer_config(v, bias.has_value());
            const VptqLayer back = io::read_vptq_layer(tensors, prefix, lc);
            VQLIB_CHECK(back.dequantize() == Q, invalid_argument, "--vptq-dtype ", dtype_lower(opt.vptq_dtype),
                        ": linear '", it.name, "' does not reload to the same weights in that dtype (its codebooks "
                        "hold values the dtype rounds); use f16, which vqlib's VPTQ codebooks are fitted in");
            vptq_dispatch_warnings(it.name, v, report.warnings);
            qc.config_for_layers[prefix] = lc;
            for (auto& [tname, tensor] : tensors)
                sources.push_back({tname, tensor.dtype, tensor.shape, [t = std::move(tensor)] { return t; }});
        }
        std::set<std::string> names;
        for (const auto& s : sources) names.insert(s.name);
        for (const std::string& name : model.names())
            if (!quantized.count(name) && !names.count(name)) sources.push_back(copied(name));
        io::write_safetensors_streamed(dir / "model.safetensors", std::move(sources), {{"format", "pt"}});
        json config = base_config;
        config["quantization_config"] = qc;
        write_text(dir / "config.json", config.dump(2) + "\n");
        for (const fs::path& f : auxiliary_files(model.directory())) copy_atomically(f, dir / f.filename());
        report.outputs.push_back(dir / "model.safetensors");
    }

    report.stages.outputs = std::chrono::duration<double>(std::chrono::steady_clock::now() - outputs_start).count();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The JSON report (with timings, so not byte-compared between runs).
    json jr = {{"model", manifest["model"]}, {"seconds", report.seconds}, {"processes", comm.size()}};
    for (const LinearReport& r : report.linears)
        jr["linears"].push_back({{"name", r.name}, {"rows", r.rows}, {"cols", r.cols}, {"method", r.method},
                                 {"hessian", r.hessian}, {"bits_per_weight", r.bits_per_weight},
                                 {"proxy_loss", r.proxy_loss}, {"relative_loss", r.relative_loss},
                                 {"dequantized_loss", r.dequantized_loss ? json(*r.dequantized_loss) : json(nullptr)},
                                 {"percdamp", r.percdamp}, {"seconds", r.seconds}, {"rank", r.rank}});
    for (const auto& [name, why] : report.kept) jr["kept"].push_back({{"name", name}, {"why", why}});
    jr["warnings"] = report.warnings;
    const Report::Stages& st = report.stages;
    jr["stage_seconds"] = {{"read", st.read},     {"hessians", st.hessians}, {"quantize", st.quantize},
                           {"losses", st.losses}, {"persist", st.persist},   {"outputs", st.outputs}};
    write_text(opt.out / "report.json", jr.dump(1) + "\n");
    return report;
}

std::uint64_t rotation_seed(const std::string& weight) { return fnv1a(weight); }

double weight_energy(const MatrixXf& W, const MatrixXd& H) {
    return vqlib::proxy_loss_f32(W, MatrixXf::Zero(W.rows(), W.cols()), H);
}

void print_report(const Report& report, std::ostream& out) {
    std::size_t width = 6;
    for (const auto& r : report.linears) width = std::max(width, r.name.size());
    char line[512];
    std::snprintf(line, sizeof line, "%-*s %12s %-22s %7s %11s %10s %7s %8s\n", static_cast<int>(width), "linear",
                  "shape", "method", "bpw", "proxy loss", "rel loss", "damp", "seconds");
    out << line;
    double weights = 0, bits = 0, seconds = 0;
    for (const auto& r : report.linears) {
        const std::string shape = std::to_string(r.rows) + "x" + std::to_string(r.cols);
        std::snprintf(line, sizeof line, "%-*s %12s %-22s %7.4f %11.4e %10.3e %7.4f %8.2f\n", static_cast<int>(width),
                      r.name.c_str(), shape.c_str(), r.method.c_str(), r.bits_per_weight, r.proxy_loss, r.relative_loss,
                      r.percdamp, r.seconds);
        out << line;
        const double n = static_cast<double>(r.rows) * static_cast<double>(r.cols);
        weights += n;
        bits += n * r.bits_per_weight;
        seconds += r.seconds;
    }
    std::snprintf(line, sizeof line, "total: %zu linears, %.0f weights, %.4f bpw, %.1f s quantizing, %.1f s in all\n",
                  report.linears.size(), weights, weights > 0 ? bits / weights : 0, seconds, report.seconds);
    out << line;
    const Report::Stages& st = report.stages;
    std::snprintf(line, sizeof line,
                  "wall time: reading weights %.1f s, loading Hessians %.1f s, quantizing %.1f s, losses %.1f s, "
                  "persisting parts %.1f s, writing outputs %.1f s\n",
                  st.read, st.hessians, st.quantize, st.losses, st.persist, st.outputs);
    out << line;
    for (const auto& [name, why] : report.kept) out << "kept as is: " << name << " (" << why << ")\n";
    for (const auto& w : report.warnings) out << "warning: " << w << "\n";
    for (const auto& f : report.outputs) out << "wrote " << f.string() << "\n";
}

}  // namespace vqlib::quantize
