// vqlib demo: quantize an LLM-like linear layer with round-to-nearest and GPTQ, in integer and
// floating-point formats at 8, 4, 3 and 2 bits, with GPTVQ (1D/2D/4D vector quantization) and with
// PVQ (pyramid vector quantization on Hadamard-rotated weights) and with VPTQ (vectors along the
// output dimension, residual VQ) at about the same rates; print bits per weight, proxy loss and
// time.
//
// The layer is generated deterministically (seeded): Student-t weights with a few heavy rows, and
// calibration inputs with correlated features, a few outlier channels (20-60x) and one dead
// channel, the traits that make real LLM layers hard to quantize.
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/vptq.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

struct Layer {
    vqlib::MatrixXf W;  // rows x cols
    vqlib::MatrixXd H;  // cols x cols, 2/n X X^T
};

Layer make_layer(vqlib::Index rows, vqlib::Index cols, vqlib::Index tokens, std::uint64_t seed) {
    vqlib::Rng rng(seed);
    Layer layer{vqlib::MatrixXf(rows, cols), vqlib::MatrixXd()};
    for (vqlib::Index i = 0; i < rows; ++i) {
        const double row_scale = 0.02 * (i % 97 == 0 ? 4.0 : 1.0) * std::exp(0.3 * rng.normal());
        for (vqlib::Index j = 0; j < cols; ++j)
            layer.W(i, j) = static_cast<float>(row_scale * rng.student_t(4));
    }
    // Inputs: 32 latent factors mixed into every channel, plus channel noise and scales.
    constexpr vqlib::Index factors = 32;
    vqlib::MatrixXf mixing(cols, factors);
    for (vqlib::Index f = 0; f < factors; ++f)
        for (vqlib::Index j = 0; j < cols; ++j) mixing(j, f) = static_cast<float>(rng.normal());
    vqlib::VectorXf channel_scale(cols);
    for (vqlib::Index j = 0; j < cols; ++j) {
        channel_scale[j] = static_cast<float>(std::exp(0.5 * rng.normal()));
        if (j % 211 == 7) channel_scale[j] *= static_cast<float>(20.0 + 40.0 * rng.uniform());
    }
    channel_scale[cols / 2] = 0.0f;  // a dead channel
    vqlib::HessianAccumulator acc(cols);
    constexpr vqlib::Index batch = 512;
    for (vqlib::Index t0 = 0; t0 < tokens; t0 += batch) {
        vqlib::MatrixXf latent(factors, batch), X(cols, batch);
        for (vqlib::Index t = 0; t < batch; ++t)
            for (vqlib::Index f = 0; f < factors; ++f) latent(f, t) = static_cast<float>(rng.normal());
        X = mixing * latent * 0.3f;
        for (vqlib::Index t = 0; t < batch; ++t)
            for (vqlib::Index j = 0; j < cols; ++j)
                X(j, t) = (X(j, t) + static_cast<float>(rng.normal())) * channel_scale[j];
        acc.add(X);  // streaming: one batch of tokens at a time
    }
    layer.H = acc.finalize();
    return layer;
}

struct Row {
    std::string method;
    std::string format;
    vqlib::Index group;
    double bpw;
    double loss;
    double ms;
};

double baseline_loss = 1.0;  // tr(W H W^T): the loss of quantizing everything to zero

void print(const Row& r) {
    std::printf("%-6s %-14s %6s %8.3f %14.6g %12.3e %9.1f\n", r.method.c_str(), r.format.c_str(),
                r.group == 0 ? "row" : std::to_string(r.group).c_str(), r.bpw, r.loss,
                r.loss / baseline_loss, r.ms);
}

template <vqlib::ScalarGrid G>
void run(const Layer& layer, const char* method, G grid, vqlib::Index group) {
    vqlib::GptqConfig<G> config{grid};
    config.groups.size = group;
    config.hessian.act_order = std::string(method) == "GPTQ";
    const auto start = std::chrono::steady_clock::now();
    const auto result = std::string(method) == "GPTQ" ? vqlib::gptq(layer.W, layer.H, config)
                                                       : vqlib::rtn(layer.W, layer.H, config);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    print({method, grid.name(), group, result.layer.bits_per_weight(), result.proxy_loss, ms});
}

void run_vq(const Layer& layer, vqlib::Index dim, double bpv, bool best) {
    const vqlib::GptvqConfig config = vqlib::gptvq_presets::paper(dim, bpv, best);
    const auto start = std::chrono::steady_clock::now();
    const auto result = vqlib::gptvq(layer.W, layer.H, config);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const std::string format = std::to_string(dim) + "D K=" + std::to_string(config.vq.k) +
                               (best ? "" : " ref");
    print({"GPTVQ", format, config.vq.weights_per_codebook, result.layer.bits_per_weight(),
           result.proxy_loss, ms});
}

void run_pvq(const Layer& layer, double bpw) {
    const vqlib::PvqConfig config = vqlib::pvq_presets::best(bpw);
    const auto start = std::chrono::steady_clock::now();
    const auto result = vqlib::pvq(layer.W, layer.H, config);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const std::string format = "D=32 K=" + std::to_string(config.pvq.pulses) + " +g8";
    print({"PVQ", format, config.pvq.dim, result.bits_per_weight, result.proxy_loss, ms});
}

void run_vptq(const Layer& layer, vqlib::VptqConfig config) {
    const auto start = std::chrono::steady_clock::now();
    const auto result = vqlib::vptq(layer.W, layer.H, config);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::string format = "v" + std::to_string(config.vector_len) + " k" +
                         std::to_string(config.num_centroids);
    if (config.num_res_centroids > 0) format += "+" + std::to_string(config.num_res_centroids);
    print({"VPTQ", format, config.vector_len, result.bits_per_weight, result.proxy_loss, ms});
}

}  // namespace

int main() {
    using vqlib::IntGrid;
    using vqlib::MinifloatFormat;
    using vqlib::MinifloatGrid;
    using vqlib::MinifloatSpecials;
    constexpr vqlib::Index rows = 1024, cols = 1024, tokens = 4096;
    std::printf("vqlib %s demo: an LLM-like %lldx%lld layer, %lld calibration tokens\n",
                VQLIB_VERSION_STRING, static_cast<long long>(rows), static_cast<long long>(cols),
                static_cast<long long>(tokens));
    const Layer layer = make_layer(rows, cols, tokens, 2024);
    baseline_loss = vqlib::proxy_loss(layer.W, vqlib::MatrixXf::Zero(rows, cols), layer.H);
    std::printf("threads: %d; bits/weight count codes, scales (fp16) and zero points as stored;\n"
                "proxy loss = tr((W-Q) H (W-Q)^T); rel. = proxy loss / tr(W H W^T); GPTQ uses "
                "act-order;\nGPTVQ's group is the weights per codebook, PVQ's the vector dimension, VPTQ's the "
                "vector length.\n\n",
                vqlib::num_threads());
    std::printf("%-6s %-14s %6s %8s %14s %12s %9s\n", "method", "format", "group", "bits/w",
                "proxy loss", "rel.", "time ms");
    std::printf("%s\n", std::string(75, '-').c_str());
    const auto fp16 = vqlib::ScaleStorage::fp16;
    for (const char* method : {"RTN", "GPTQ"}) {
        run(layer, method, IntGrid(8, true, {}, fp16), 0);
        run(layer, method, MinifloatGrid(MinifloatFormat::fp8_e4m3(), {}, fp16), 0);
        run(layer, method, MinifloatGrid(MinifloatFormat::fp8_e5m2(), {}, fp16), 0);
    }
    for (int bits : {4, 3, 2}) {
        std::printf("\n");
        for (const char* method : {"RTN", "GPTQ"}) {
            run(layer, method, IntGrid(bits, false, {}, fp16), 128);
            run(layer, method, IntGrid(bits, true, {}, fp16), 128);
            if (bits == 4) run(layer, method, MinifloatGrid(MinifloatFormat::fp4_e2m1(), {}, fp16), 128);
            if (bits == 3)
                run(layer, method,
                    MinifloatGrid(MinifloatFormat(2, 0, MinifloatSpecials::finite, 1), {}, fp16), 128);
        }
        // GPTVQ at the same rate (INT8 codebooks; the group column is the weights per codebook).
        if (bits == 4) run_vq(layer, 2, 4.125, true);
        if (bits == 3) {
            run_vq(layer, 1, 3.125, true);
            run_vq(layer, 2, 3.125, true);
        }
        if (bits == 2) {
            run_vq(layer, 2, 2.125, false);
            for (vqlib::Index dim : {1, 2, 4}) run_vq(layer, dim, 2.125, true);
        }
        // PVQ: shape index + 8-bit gain per 32 weights, plus an fp16 norm per row (group column:
        // the vector dimension).
        run_pvq(layer, bits + 0.25);
        // VPTQ: vectors of v rows of one column, fp16 codebooks, uint16 act-order permutation
        // (group column: the vector length).
        if (bits == 4) run_vptq(layer, vqlib::vptq_presets::make(2, 256));
        if (bits == 3) run_vptq(layer, vqlib::vptq_presets::v4_k256_res16());
        if (bits == 2) {
            run_vptq(layer, vqlib::vptq_presets::v4_k256());
            run_vptq(layer, vqlib::vptq_presets::make(8, 4096, 0));
        }
    }
    return 0;
}
