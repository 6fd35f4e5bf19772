#pragma once
// Matrix aliases used across vqlib. Weights are R x C (rows = output features, columns = input
// features, as nn.Linear.weight) and column-major, so that one input column is contiguous: the
// block solver walks the columns. Inputs are taken as Eigen::Ref, so maps, blocks and row-major
// matrices are accepted without forcing the caller into our types.
#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace vqlib {

using Index = Eigen::Index;

using MatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using MatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using VectorXf = Eigen::Matrix<float, Eigen::Dynamic, 1>;
using VectorXd = Eigen::Matrix<double, Eigen::Dynamic, 1>;
using RowMajorMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using MatrixRef = Eigen::Ref<MatrixXf>;
using ConstMatrixRef = Eigen::Ref<const MatrixXf>;
using ConstMatrixRefD = Eigen::Ref<const MatrixXd>;
using ConstVectorRef = Eigen::Ref<const VectorXf>;

/// Integer codes of a layer, rows x columns (column-major, like the weights).
using CodeMatrix = Eigen::Matrix<std::uint16_t, Eigen::Dynamic, Eigen::Dynamic>;

/// A column permutation: perm[k] is the original column placed at position k.
using Permutation = std::vector<Index>;

}  // namespace vqlib
