// Uses vqlib as a user would, through its package: build a Hessian from calibration inputs and
// quantize a small layer with GPTQ; exit non-zero if the result is not what GPTQ guarantees.
#include <vqlib/gptq.hpp>

#include <cstdio>

int main() {
    std::printf("vqlib %s\n", VQLIB_VERSION_STRING);
    constexpr vqlib::Index rows = 32, cols = 64, tokens = 256;
    vqlib::Rng rng(42);
    vqlib::MatrixXf W(rows, cols), X(cols, tokens);
    for (vqlib::Index j = 0; j < cols; ++j)
        for (vqlib::Index i = 0; i < rows; ++i) W(i, j) = static_cast<float>(rng.normal());
    for (vqlib::Index t = 0; t < tokens; ++t)
        for (vqlib::Index i = 0; i < cols; ++i) X(i, t) = static_cast<float>(rng.normal());

    vqlib::HessianAccumulator acc(cols);
    acc.add(X);
    const vqlib::MatrixXd H = acc.finalize();

    vqlib::GptqConfig<vqlib::IntGrid> config{vqlib::IntGrid(4, false)};
    config.groups.size = 32;
    const auto gptq = vqlib::gptq(W, H, config);
    const auto rtn = vqlib::rtn(W, H, config);
    std::printf("INT4 g32: %.4f bits/weight, proxy loss GPTQ %.4f vs RTN %.4f\n",
                gptq.layer.bits_per_weight(), gptq.proxy_loss, rtn.proxy_loss);
    if (!(gptq.proxy_loss < rtn.proxy_loss) || gptq.layer.dequantize() != gptq.Q) {
        std::fprintf(stderr, "unexpected GPTQ result\n");
        return 1;
    }
    return 0;
}
