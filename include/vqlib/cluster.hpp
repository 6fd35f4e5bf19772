#pragma once
// vqlib cluster: weighted k-means for codebooks.
//   weights.hpp     the four weight forms (none, per-point, per-coordinate, elementwise)
//   assignment.hpp  nearest-centroid search: fused SIMD kernels (D = 1..16) and a GEMM path
//   seeding.hpp     initial centroids: Mahalanobis (GPTVQ), quantiles, k-means++, random, given
//   kmeans.hpp      the EM loop, empty-cluster policies, per-iteration stats, kmeans_batch
#include <vqlib/cluster/assignment.hpp>
#include <vqlib/cluster/kmeans.hpp>
#include <vqlib/cluster/seeding.hpp>
#include <vqlib/cluster/weights.hpp>
