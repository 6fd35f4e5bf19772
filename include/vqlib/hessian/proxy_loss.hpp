#pragma once
// The layer-wise proxy loss tr((W - Q) H (W - Q)^T), in float64.
#include <vqlib/core/checks.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/types.hpp>

#include <vector>

namespace vqlib {

/// tr((W - Q) H (W - Q)^T) = sum over rows of d H d^T with d = W - Q, computed in float64 by fixed
/// row chunks (deterministic for any thread count). With H = 2/n X X^T it is 2/n ||(W - Q) X||^2.
template <class DerivedH>
double proxy_loss(ConstMatrixRef W, ConstMatrixRef Q, const Eigen::MatrixBase<DerivedH>& H) {
    check_shape("Q", Q, W.rows(), W.cols());
    check_shape("H", H, W.cols(), W.cols());
    const MatrixXd Hd = H.template cast<double>();
    constexpr Index chunk = 64;
    const Index chunks = (W.rows() + chunk - 1) / chunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(chunks, [&](Index c) {
        const Index r0 = c * chunk;
        const Index rows = std::min(W.rows(), r0 + chunk) - r0;
        const MatrixXd d = (W.middleRows(r0, rows) - Q.middleRows(r0, rows)).template cast<double>();
        const MatrixXd dH = d * Hd;
        partial[static_cast<std::size_t>(c)] = dH.cwiseProduct(d).sum();
    });
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace vqlib
