// vqlib example: the sign-magnitude method of examples/sign_magnitude.hpp (one policy and one
// header, docs/architecture.md section 9) run like a stock method, with act-order.
//
// It exits with 1 unless: the layer decodes to the solver's own Q; with the exact update the
// solver's sum of E^2 is the damped proxy loss (the GPTQ invariant, on a layer without dead
// columns); one and two threads give the same bits; error feedback beats round-to-nearest of the
// same format; the bit count is 1 + 2/4 + 16/C.
#include "sign_magnitude.hpp"

#include <vqlib/core.hpp>
#include <vqlib/hessian.hpp>

#include <cmath>
#include <cstdio>

int main() {
    constexpr vqlib::Index rows = 96, cols = 256, tokens = 1024;
    vqlib::Rng rng(3);
    vqlib::MatrixXf W(rows, cols), X(cols, tokens);
    for (vqlib::Index j = 0; j < cols; ++j)
        for (vqlib::Index i = 0; i < rows; ++i) W(i, j) = static_cast<float>(0.02 * rng.student_t(4));
    for (vqlib::Index t = 0; t < tokens; ++t) {
        const double shared = rng.normal();
        for (vqlib::Index j = 0; j < cols; ++j)
            X(j, t) = static_cast<float>((0.5 * shared + rng.normal()) * (1 + j % 7));
    }
    vqlib::HessianAccumulator acc(cols);
    acc.add(X);
    const vqlib::MatrixXd H = acc.finalize();

    mine::SignMagnitudeConfig config;  // D = 4, 2-bit levels, the exact update
    config.hessian.act_order = true;
    vqlib::set_num_threads(1);
    const mine::SignMagnitudeResult one = mine::sign_magnitude(W, H, config);
    vqlib::set_num_threads(2);
    const mine::SignMagnitudeResult r = mine::sign_magnitude(W, H, config);
    auto rtn = config;
    rtn.update = vqlib::ErrorUpdateKind::none;
    const mine::SignMagnitudeResult rounded = mine::sign_magnitude(W, H, rtn);

    vqlib::MatrixXd H_damp = H;
    H_damp.diagonal().array() += vqlib::prepare_hessian(H, config.hessian).damp;
    const double damped = vqlib::proxy_loss(W, r.Q, H_damp);
    std::printf("sign-magnitude D=4, 2-bit levels: %.4f bits/weight, proxy loss %.6g "
                "(round-to-nearest %.6g), sum E^2 %.6g vs damped loss %.6g\n",
                r.bits_per_weight, r.proxy_loss, rounded.proxy_loss, r.stats.error_sum, damped);

    bool ok = true;
    auto check = [&](bool condition, const char* what) {
        if (!condition) {
            std::printf("FAIL: %s\n", what);
            ok = false;
        }
    };
    check(r.layer.dequantize() == r.Q, "the layer does not decode to the solver's Q");
    check(std::abs(r.stats.error_sum - damped) <= 1e-3 * damped,
          "sum E^2 is not the damped proxy loss");
    check(one.Q == r.Q && one.stats.error_sum == r.stats.error_sum,
          "one and two threads differ");
    check(r.proxy_loss < rounded.proxy_loss, "error feedback does not beat round-to-nearest");
    check(r.bits_per_weight == 1.0 + 2.0 / 4 + 16.0 / cols, "unexpected bits per weight");
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
