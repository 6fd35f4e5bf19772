// GPTVQ and the clustering options it shares with VPTQ (k-means parameters and seedings).
#include "results.hpp"

#include <vqlib/gptvq.hpp>


namespace vqlib::python {
namespace {

void bind_kmeans(py::module_& m) {
    py::enum_<EmptyClusterPolicy>(m, "EmptyClusterPolicy")
        .value("reset_to_zero", EmptyClusterPolicy::reset_to_zero)
        .value("split_heaviest", EmptyClusterPolicy::split_heaviest);
    py::enum_<AssignmentMethod>(m, "AssignmentMethod")
        .value("automatic", AssignmentMethod::automatic)
        .value("direct", AssignmentMethod::direct)
        .value("gemm", AssignmentMethod::gemm);
    py::enum_<KMeansAcceleration>(m, "KMeansAcceleration",
                                  "E-steps of kmeans: plain, or pruned by exact distance bounds "
                                  "(same results).")
        .value("automatic", KMeansAcceleration::automatic)
        .value("none", KMeansAcceleration::none)
        .value("bounds", KMeansAcceleration::bounds);
    {
        py::class_<MahalanobisSeeding> c(m, "MahalanobisSeeding", "GPTVQ's Mahalanobis seeding.");
        def_fields_init<MahalanobisSeeding>(c, "MahalanobisSeeding");
        field(c, "reference_float32", &MahalanobisSeeding::reference_float32);
        def_repr<MahalanobisSeeding>(c, "MahalanobisSeeding");
    }
    py::class_<KMeansPlusPlusSeeding>(m, "KMeansPlusPlusSeeding").def(py::init<>())
        .def("__repr__", [](const KMeansPlusPlusSeeding&) { return "KMeansPlusPlusSeeding()"; });
    py::class_<QuantileSeeding>(m, "QuantileSeeding").def(py::init<>())
        .def("__repr__", [](const QuantileSeeding&) { return "QuantileSeeding()"; });
    py::class_<RandomSeeding>(m, "RandomSeeding").def(py::init<>())
        .def("__repr__", [](const RandomSeeding&) { return "RandomSeeding()"; });
    py::class_<GivenCentroids>(m, "GivenCentroids", "Start from the given K x D centroids.")
        .def(py::init([](py::handle centroids) {
                 const FloatMatrix c(centroids, "centroids");
                 return GivenCentroids{MatrixXf(c.map())};
             }),
             py::arg("centroids"))
        .def_property_readonly("centroids", [](py::handle self) {
            return view_of(self.cast<const GivenCentroids&>().centroids, self);
        });
    {
        py::class_<KMeansParameters> c(m, "KMeansParameters", "Weighted k-means/EM parameters.");
        def_fields_init<KMeansParameters>(c, "KMeansParameters");
        field(c, "k", &KMeansParameters::k);
        field(c, "max_iterations", &KMeansParameters::max_iterations);
        field(c, "tolerance", &KMeansParameters::tolerance);
        ref_field(c, "seeding", &KMeansParameters::seeding);
        field(c, "empty_clusters", &KMeansParameters::empty_clusters);
        field(c, "seed", &KMeansParameters::seed);
        field(c, "subsample", &KMeansParameters::subsample);
        field(c, "assignment", &KMeansParameters::assignment);
        field(c, "parallel", &KMeansParameters::parallel);
        field(c, "acceleration", &KMeansParameters::acceleration);
        field(c, "bounds_memory", &KMeansParameters::bounds_memory);
        def_repr<KMeansParameters>(c, "KMeansParameters");
    }
}

}  // namespace

void register_gptvq(py::module_& m) {
    bind_kmeans(m);

    py::enum_<LookupMetric>(m, "LookupMetric")
        .value("euclidean", LookupMetric::euclidean)
        .value("inverse_u", LookupMetric::inverse_u)
        .value("inverse_u_squared", LookupMetric::inverse_u_squared)
        .value("exact", LookupMetric::exact);
    py::enum_<InitWeighting>(m, "InitWeighting")
        .value("none", InitWeighting::none)
        .value("u", InitWeighting::u)
        .value("inverse_u", InitWeighting::inverse_u);
    py::enum_<CodebookScaleScope>(m, "CodebookScaleScope")
        .value("per_codebook", CodebookScaleScope::per_codebook)
        .value("shared", CodebookScaleScope::shared);
    py::enum_<CodebookUpdateMethod>(m, "CodebookUpdateMethod")
        .value("none", CodebookUpdateMethod::none)
        .value("adam", CodebookUpdateMethod::adam)
        .value("least_squares", CodebookUpdateMethod::least_squares);
    py::enum_<ScaleNorm>(m, "ScaleNorm")
        .value("max_abs", ScaleNorm::max_abs)
        .value("l2", ScaleNorm::l2)
        .value("l1", ScaleNorm::l1);
    py::enum_<ScaleDomain>(m, "ScaleDomain")
        .value("log10", ScaleDomain::log10)
        .value("linear", ScaleDomain::linear);
    {
        py::class_<BlockwiseNormalizationOptions> c(m, "BlockwiseNormalizationOptions",
                                                    "GPTVQ's blockwise normalization (App. H).");
        def_fields_init<BlockwiseNormalizationOptions>(c, "BlockwiseNormalizationOptions");
        field(c, "block_size", &BlockwiseNormalizationOptions::block_size);
        field(c, "bits", &BlockwiseNormalizationOptions::bits);
        field(c, "norm", &BlockwiseNormalizationOptions::norm);
        field(c, "domain", &BlockwiseNormalizationOptions::domain);
        field(c, "offset_storage", &BlockwiseNormalizationOptions::offset_storage);
        def_repr<BlockwiseNormalizationOptions>(c, "BlockwiseNormalizationOptions");
    }
    {
        py::class_<VqOptions> c(m, "VqOptions", "GPTVQ's vector and codebook layout.");
        def_fields_init<VqOptions>(c, "VqOptions");
        field(c, "dim", &VqOptions::dim);
        field(c, "k", &VqOptions::k);
        field(c, "weights_per_codebook", &VqOptions::weights_per_codebook);
        field(c, "columns_per_group", &VqOptions::columns_per_group);
        field(c, "lookup", &VqOptions::lookup);
        field(c, "init_weighting", &VqOptions::init_weighting);
        ref_field(c, "normalization", &VqOptions::normalization);
        field(c, "scale_weighted_fit", &VqOptions::scale_weighted_fit);
        def_repr<VqOptions>(c, "VqOptions");
    }
    {
        py::class_<IntegerCodebookOptions> c(m, "IntegerCodebookOptions");
        def_fields_init<IntegerCodebookOptions>(c, "IntegerCodebookOptions");
        field(c, "bits", &IntegerCodebookOptions::bits);
        field(c, "scope", &IntegerCodebookOptions::scope);
        field(c, "scale_storage", &IntegerCodebookOptions::scale_storage);
        def_repr<IntegerCodebookOptions>(c, "IntegerCodebookOptions");
    }
    {
        py::class_<GptvqCodebookStorage> c(m, "GptvqCodebookStorage",
                                           "integer = IntegerCodebookOptions, or None for fp16.");
        def_fields_init<GptvqCodebookStorage>(c, "GptvqCodebookStorage");
        ref_field(c, "integer", &GptvqCodebookStorage::integer);
        def_repr<GptvqCodebookStorage>(c, "GptvqCodebookStorage");
    }
    {
        py::class_<CodebookUpdateOptions> c(m, "CodebookUpdateOptions");
        def_fields_init<CodebookUpdateOptions>(c, "CodebookUpdateOptions");
        field(c, "method", &CodebookUpdateOptions::method);
        field(c, "learning_rate", &CodebookUpdateOptions::learning_rate);
        field(c, "steps", &CodebookUpdateOptions::steps);
        field(c, "max_restarts", &CodebookUpdateOptions::max_restarts);
        field(c, "sweeps", &CodebookUpdateOptions::sweeps);
        field(c, "keep_if_worse", &CodebookUpdateOptions::keep_if_worse);
        def_repr<CodebookUpdateOptions>(c, "CodebookUpdateOptions");
    }
    py::class_<CodebookUpdateStats>(m, "CodebookUpdateStats")
        .def_readonly("loss_before", &CodebookUpdateStats::loss_before)
        .def_readonly("loss_after", &CodebookUpdateStats::loss_after)
        .def_readonly("restarts", &CodebookUpdateStats::restarts)
        .def_readonly("kept", &CodebookUpdateStats::kept)
        .def_readonly("seconds", &CodebookUpdateStats::seconds);
    {
        py::class_<SvdCodebookOptions> c(m, "SvdCodebookOptions",
                                         "SVD codebook compression of 1-D codebooks (App. G).");
        def_fields_init<SvdCodebookOptions>(c, "SvdCodebookOptions");
        field(c, "rank_fraction", &SvdCodebookOptions::rank_fraction);
        ref_field(c, "u_quantization", &SvdCodebookOptions::u_quantization);
        field(c, "rows_per_shared_scale", &SvdCodebookOptions::rows_per_shared_scale);
        field(c, "factor_storage", &SvdCodebookOptions::factor_storage);
        def_repr<SvdCodebookOptions>(c, "SvdCodebookOptions");
    }
    {
        py::class_<GptvqConfig> c(m, "GptvqConfig", "GPTVQ's configuration (gptvq.hpp).");
        def_fields_init<GptvqConfig>(c, "GptvqConfig");
        field(c, "name", &GptvqConfig::name);
        field(c, "vq", &GptvqConfig::vq);
        field(c, "kmeans", &GptvqConfig::kmeans);
        field(c, "codebooks", &GptvqConfig::codebooks);
        field(c, "update", &GptvqConfig::update);
        field(c, "codebook_update", &GptvqConfig::codebook_update);
        ref_field(c, "svd", &GptvqConfig::svd);
        field(c, "hessian", &GptvqConfig::hessian);
        field(c, "solver", &GptvqConfig::solver);
        def_repr<GptvqConfig>(c, "GptvqConfig");
    }
    {
        py::class_<VqLayout> c(m, "VqLayout");
        c.def_readonly("rows", &VqLayout::rows)
            .def_readonly("cols", &VqLayout::cols)
            .def_readonly("dim", &VqLayout::dim)
            .def_readonly("k", &VqLayout::k)
            .def_readonly("rows_per_codebook", &VqLayout::rows_per_codebook)
            .def_readonly("columns_per_group", &VqLayout::columns_per_group)
            .def_property_readonly("codebook_count", &VqLayout::codebook_count);
    }
    {
        py::class_<VqLayer> c(m, "VqLayer", "A GPTVQ layer: stacked codebooks and indices.");
        def_layer_core<VqLayer>(c);
        c.def_readonly("layout", &VqLayer::layout)
            .def_property_readonly(
                "codebooks",
                [](py::handle self) { return view_of(self.cast<const VqLayer&>().codebooks, self); },
                "codebooks stacked (codebook_count*K x D, float32, the stored values)")
            .def_property_readonly(
                "indices",
                [](py::handle self) { return view_of(self.cast<const VqLayer&>().indices, self); },
                "indices (rows x cols/D, uint16)")
            .def_property_readonly(
                "scales", [](py::handle self) { return view_of(self.cast<const VqLayer&>().scales, self); })
            .def_property_readonly(
                "basis", [](py::handle self) { return view_of(self.cast<const VqLayer&>().basis, self); },
                "SVD-factored codebooks: the shared basis V' (rank x K; empty otherwise)")
            .def_readonly("scale_block", &VqLayer::scale_block)
            .def_readonly("codebook_bits", &VqLayer::codebook_bits);
    }
    {
        py::class_<GptvqResult> c(m, "GptvqResult", "GPTVQ's result (+ codebook_update).");
        def_result_core<GptvqResult>(c);
        c.def_readonly("codebook_update", &GptvqResult::codebook_update);
    }
    def_recipe<GptvqConfig>(
        m, "gptvq", [](const auto& W, const auto& H, const GptvqConfig& c) { return gptvq(W, H, c); },
        "GPTVQ on W (R x C) with the undamped Hessian H (C x C).");
    m.def(
        "gptvq",
        [](py::handle W, py::handle H, const PreparedHessian& prepared, const GptvqConfig& config) {
            const FloatMatrix w(W, "W");
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return gptvq(w.map(), h, prepared, config);
            });
        },
        py::arg("W"), py::arg("H"), py::arg("prepared"), py::arg("config"),
        "GPTVQ with a PreparedHessian (gptvq_prepare_hessian(H, config)) shared by the linears "
        "that read the same input; H is still needed by the codebook update.");

    m.def(
        "gptvq_prepare_hessian",
        [](py::handle H, const GptvqConfig& config) {
            return visit_matrix(H, "H", [&](const auto& h) {
                py::gil_scoped_release release;
                return gptvq_prepare_hessian(h, config);
            });
        },
        py::arg("H"), py::arg("config"),
        "prepare_hessian(H, config.hessian) with act-order (when on) moving whole vectors.");

    auto presets = m.def_submodule(
        "gptvq_presets", "GPTVQ presets: (dim, bits_per_dim, weights_per_codebook), as in C++.");
    presets.def("reference_compatible", &gptvq_presets::reference_compatible, py::arg("dim"),
                py::arg("bits_per_dim"), py::arg("weights_per_codebook"));
    presets.def("best", &gptvq_presets::best, py::arg("dim"), py::arg("bits_per_dim"),
                py::arg("weights_per_codebook"));
    presets.def("paper", &gptvq_presets::paper, py::arg("dim"), py::arg("bits_per_value"),
                py::arg("best_choices") = true);
    presets.def("paper_scaled", &gptvq_presets::paper_scaled, py::arg("dim"),
                py::arg("bits_per_value"), py::arg("best_choices") = true);
    presets.def("paper_svd", &gptvq_presets::paper_svd, py::arg("bits_per_value"),
                py::arg("best_choices") = true);
    presets.def("centroids_for", &gptvq_presets::centroids_for, py::arg("dim"),
                py::arg("bits_per_dim"));
}

}  // namespace vqlib::python
