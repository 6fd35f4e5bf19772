// Tests of vqlib/quantizers/pvq_quantizer.hpp on single steps: the gain is the least-squares gain
// in the chosen metric, the metric refinement never loses to the greedy shape and often wins,
// the stored codes reproduce the output, a negative gain flips the shape, and argument errors.
#include <vqlib/quantizers/pvq_quantizer.hpp>

#include <catch2/catch.hpp>

#include "../support/random.hpp"

#include <cmath>
#include <vector>

namespace {

using vqlib::Index;
using vqlib::MatrixXd;
using vqlib::MatrixXf;

constexpr Index kDim = 8;
constexpr int kPulses = 6;

/// An upper-triangular U with a positive diagonal, as a block of chol(H^-1).
MatrixXf random_upper(std::uint64_t seed) {
    MatrixXf U = vqlib::test::normal_matrix(kDim, kDim, seed, 0.3).triangularView<Eigen::Upper>();
    for (Index i = 0; i < kDim; ++i) U(i, i) = 0.5f + std::abs(U(i, i));
    return U;
}

/// Fine gains: 16-bit log-uniform levels over [1e-4, 10] (relative steps of 1.8e-4).
vqlib::GainCodebook fine_gains() { return vqlib::LogUniformGain{16, 1e-4, 10.0}.codebook(kDim, 64); }

struct Step {
    MatrixXf q;
    vqlib::PvqLayer<std::uint64_t> layer;
};

Step run_step(const vqlib::PvqOptions& options, const MatrixXf& W, const MatrixXf& U) {
    vqlib::PvqQuantizer<std::uint64_t> quantizer(options, fine_gains());
    const vqlib::Permutation perm{0, 1, 2, 3, 4, 5, 6, 7};
    const std::vector<bool> dead(kDim, false);
    quantizer.begin(vqlib::SolveSetup{W, W, perm, dead, U, kDim});
    MatrixXf q(W.rows(), kDim);
    quantizer.quantize(vqlib::StepView{0, kDim, U}, 0, W, q);
    return {q, quantizer.layer()};
}

/// (w - q)' M (w - q) with M = U^-1 U^-T: the loss increase under exact GPTQ feedback.
double metric_error(const MatrixXf& U, const Eigen::VectorXf& w, const Eigen::VectorXf& q) {
    const Eigen::RowVectorXd d = (w - q).cast<double>().transpose();
    const MatrixXd Ud = U.cast<double>();
    const Eigen::RowVectorXd e = Ud.triangularView<Eigen::Upper>().solve<Eigen::OnTheRight>(d);
    return e.squaredNorm();
}

}  // namespace

TEST_CASE("PvqQuantizer: the gain is the least-squares gain in the metric", "[quantizers][pvq]") {
    const MatrixXf W = vqlib::test::student_t_matrix(32, kDim, 41, 4);
    const MatrixXf U = random_upper(42);
    const MatrixXd Ud = U.cast<double>();
    const MatrixXd A = Ud.triangularView<Eigen::Upper>().solve(MatrixXd::Identity(kDim, kDim));
    const MatrixXd M = A * A.transpose();
    for (auto metric : {vqlib::GainMetric::euclidean, vqlib::GainMetric::conditional}) {
        vqlib::PvqOptions o;
        o.dim = kDim;
        o.pulses = kPulses;
        o.search = vqlib::ShapeSearch::greedy;
        o.gain_metric = metric;
        o.norm_storage = vqlib::ScaleStorage::fp32;
        const auto step = run_step(o, W, U);
        const auto codec = step.layer.codec();
        std::vector<std::int32_t> y(kDim);
        const MatrixXd Mm = metric == vqlib::GainMetric::euclidean ? MatrixXd::Identity(kDim, kDim) : M;
        for (Index r = 0; r < W.rows(); ++r) {
            codec.decode(step.layer.indices[static_cast<std::size_t>(r)], y);
            Eigen::VectorXd yh(kDim);
            for (Index j = 0; j < kDim; ++j) yh[j] = y[static_cast<std::size_t>(j)];
            yh.normalize();
            const Eigen::VectorXd w = W.row(r).transpose().cast<double>();
            const double s = yh.dot(Mm * w) / yh.dot(Mm * yh);
            INFO("metric " << int(metric) << ", row " << r);
            CHECK(s > 0);  // the sign is folded into y
            for (Index j = 0; j < kDim; ++j)
                CHECK(step.q(r, j) == Approx(s * yh[j]).epsilon(1e-3).margin(1e-5));
        }
        // The layer's stored codes reproduce the step's output.
        CHECK(step.layer.dequantize_rotated().isApprox(step.q, 1e-6f));
    }
}

TEST_CASE("PvqQuantizer: the metric refinement never loses to greedy and often wins",
          "[quantizers][pvq]") {
    const MatrixXf W = vqlib::test::normal_matrix(200, kDim, 43);
    const MatrixXf U = random_upper(44);
    vqlib::PvqOptions o;
    o.dim = kDim;
    o.pulses = kPulses;
    o.gain_metric = vqlib::GainMetric::conditional;
    o.norm_storage = vqlib::ScaleStorage::fp32;
    o.search = vqlib::ShapeSearch::greedy;
    const auto greedy = run_step(o, W, U);
    o.search = vqlib::ShapeSearch::metric_swap;
    const auto refined = run_step(o, W, U);
    int wins = 0;
    for (Index r = 0; r < W.rows(); ++r) {
        const double eg = metric_error(U, W.row(r).transpose(), greedy.q.row(r).transpose());
        const double er = metric_error(U, W.row(r).transpose(), refined.q.row(r).transpose());
        CHECK(er <= eg * (1 + 1e-3) + 1e-9);
        wins += er < 0.99 * eg;
    }
    CHECK(wins > 20);
}

TEST_CASE("PvqQuantizer: a group pointing against the metric's preferred direction flips",
          "[quantizers][pvq]") {
    // With the Euclidean metric s = yhat' w > 0 always; all-negative weights give y <= 0.
    MatrixXf W = -vqlib::test::positive_matrix(4, kDim, 45);
    const MatrixXf U = MatrixXf::Identity(kDim, kDim);
    vqlib::PvqOptions o;
    o.dim = kDim;
    o.pulses = kPulses;
    o.gain_metric = vqlib::GainMetric::euclidean;
    const auto step = run_step(o, W, U);
    std::vector<std::int32_t> y(kDim);
    for (Index r = 0; r < 4; ++r) {
        step.layer.codec().decode(step.layer.indices[static_cast<std::size_t>(r)], y);
        for (auto v : y) CHECK(v <= 0);
        CHECK((step.q.row(r).array() <= 0).all());
    }
}

TEST_CASE("PvqQuantizer rejects invalid arguments", "[quantizers][pvq]") {
    using Catch::Matchers::Contains;
    vqlib::PvqOptions o;
    o.dim = 1;
    CHECK_THROWS_WITH(vqlib::PvqQuantizer<std::uint64_t>(o, fine_gains()), Contains("dim = 1"));
    o.dim = kDim;
    o.pulses = 0;
    CHECK_THROWS_WITH(vqlib::PvqQuantizer<std::uint64_t>(o, fine_gains()), Contains("pulses = 0"));
    o.pulses = kPulses;
    vqlib::GainCodebook bad{{0.5f, 0.25f}, 1, 0};
    CHECK_THROWS_WITH(vqlib::PvqQuantizer<std::uint64_t>(o, bad), Contains("ascending"));
    o.gain_metric = vqlib::GainMetric::hessian;
    CHECK_THROWS_WITH(vqlib::PvqQuantizer<std::uint64_t>(o, fine_gains()), Contains("needs the Hessian"));
    o.gain_metric = vqlib::GainMetric::euclidean;
    o.dim = 32;
    o.pulses = 60;  // V(32, 60) needs more than 64 bits
    CHECK_THROWS_AS(vqlib::PvqQuantizer<std::uint64_t>(o, fine_gains()), vqlib::invalid_argument);
}
