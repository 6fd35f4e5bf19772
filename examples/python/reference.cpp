// The C++ side of the Python bindings' bit-identity tests (tests/test_identity.py): runs the
// recipes the test runs through Python, on the same .npy inputs, and writes each Q (and the
// accumulated Hessian) as .npy plus the proxy losses as text, for the test to compare.
//
//   vqlib_python_reference W.npy H.npy X.npy OUTDIR
#include <vqlib/gptq.hpp>
#include <vqlib/gptvq.hpp>
#include <vqlib/io/npy.hpp>
#include <vqlib/pvq.hpp>
#include <vqlib/vptq.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s W.npy H.npy X.npy OUTDIR\n", argv[0]);
        return 2;
    }
    try {
        const vqlib::MatrixXf W = vqlib::load_npy_matrix(argv[1]);
        const vqlib::MatrixXf H = vqlib::load_npy_matrix(argv[2]);
        const vqlib::MatrixXf X = vqlib::load_npy_matrix(argv[3]);
        const std::filesystem::path out = argv[4];
        std::filesystem::create_directories(out);
        std::ofstream losses(out / "losses.txt");
        losses.precision(17);
        auto record = [&](const std::string& name, const auto& result) {
            vqlib::save_npy(out / ("Q_" + name + ".npy"), vqlib::MatrixXf(result.Q));
            losses << name << ' ' << result.proxy_loss << ' ' << result.bits_per_weight << '\n';
        };

        // The same configurations as tests/test_identity.py builds through the Python API.
        vqlib::GptqConfig<vqlib::IntGrid> gptq{vqlib::IntGrid(4, false)};
        gptq.groups.size = 128;
        gptq.hessian.act_order = true;
        record("gptq_w4g128_act", vqlib::gptq(W, H, gptq));

        vqlib::GptqConfig<vqlib::MinifloatGrid> fp8{
            vqlib::MinifloatGrid(vqlib::MinifloatFormat::fp8_e4m3())};
        fp8.groups.size = 64;
        record("gptq_fp8_g64", vqlib::gptq(W, H, fp8));

        record("gptvq_best_2d", vqlib::gptvq(W, H, vqlib::gptvq_presets::best(2, 2, 2048)));
        auto vptq = vqlib::vptq_presets::v4_k256();
        vptq.enable_norm = true;
        record("vptq_v4k256_norm", vqlib::vptq(W, H, vptq));
        record("pvq_best_3.25", vqlib::pvq(W, H, vqlib::pvq_presets::best(32, 3.25)));

        vqlib::HessianAccumulator acc(X.rows());
        acc.add(X);
        vqlib::save_npy(out / "H_accumulated.npy", acc.finalize());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vqlib_python_reference: %s\n", e.what());
        return 1;
    }
}
