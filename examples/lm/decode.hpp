#pragma once
// Quantized evaluation through vqlib's decode kernels: a linear of the model replaced by a
// kernel matrix (kernels/) built from its quantized layer, applied 8 tokens at a time with the
// fused GEMV (the batch a decode step runs), instead of the dequantized weight in a GEMM.
#include "web_char.hpp"

#include <vqlib/io/layer_checkpoint.hpp>
#include <vqlib/kernels.hpp>
#include <vqlib/transform/incoherence.hpp>

#include <memory>
#include <optional>
#include <variant>

namespace vqlib::lm {

/// The kernel matrix of a quantized layer: GPTVQ (VqGemvMatrix), VPTQ (VptqGemvMatrix) or INT4
/// scalar layers (Int4GemvMatrix). Other layers have no fused kernel: invalid_argument naming it.
/// With `rotation` (a layer quantized in a randomized-Hadamard basis, vqlib::incoherent), each
/// batch is rotated in (X' = R_in X) and the kernel's output rotated back (Y = R_out^T Y').
inline LinearKernel decode_kernel(const io::QuantizedLayer& layer, const std::string& name,
                                  const std::optional<transform::IncoherenceTransform>& rotation = {}) {
    auto wrap = [&rotation](auto matrix) -> LinearKernel {
        auto m = std::make_shared<const decltype(matrix)>(std::move(matrix));
        auto r = rotation ? std::make_shared<const transform::IncoherenceTransform>(*rotation) : nullptr;
        return [m, r](const Activations& x, Index T) {
            // x (tokens x in, row-major) is, as memory, the column-major in x tokens matrix X^T.
            const Eigen::Map<const MatrixXf> xt(x.data(), x.cols(), x.rows());
            Activations y(x.rows(), m->rows());
            Eigen::Map<MatrixXf> yt(y.data(), y.cols(), y.rows());
            for_row_ranges(x.rows(), T, [&](Index r0, Index r1) {
                kernels::GemvOptions options;
                options.parallel = false;  // the token ranges already run in parallel
                MatrixXf xb;
                for (Index t = r0; t < r1; t += kernels::max_gemv_batch) {
                    const Index b = std::min(kernels::max_gemv_batch, r1 - t);
                    if (!r) {
                        kernels::gemv(*m, xt.middleCols(t, b), yt.middleCols(t, b), options);
                        continue;
                    }
                    xb = xt.middleCols(t, b);
                    r->transform_inputs(xb);
                    auto yb = yt.middleCols(t, b);
                    kernels::gemv(*m, xb, yb, options);
                    r->restore_outputs(yb);
                }
            });
            return y;
        };
    };
    return std::visit(
        [&](const auto& l) -> LinearKernel {
            using L = std::decay_t<decltype(l)>;
            if constexpr (std::is_same_v<L, VqLayer>) {
                return wrap(kernels::VqGemvMatrix::from_layer(l));
            } else if constexpr (std::is_same_v<L, VptqLayer>) {
                return wrap(kernels::VptqGemvMatrix::from_layer(l));
            } else if constexpr (std::is_same_v<L, ScalarLayer<IntGrid>>) {
                VQLIB_CHECK(l.grid.code_bits() == 4, invalid_argument, name, ": an INT",
                            l.grid.code_bits(), " layer: the decode kernels run INT4 only");
                return wrap(kernels::Int4GemvMatrix::from_layer(l));
            } else {
                throw invalid_argument(vqlib::detail::concat(
                    name, ": a PVQ or minifloat layer: no decode kernel (kernels/ runs GPTVQ, VPTQ "
                          "and INT4 layers)"));
            }
        },
        layer);
}

}  // namespace vqlib::lm
