// swift-tools-version: 6.1
// kandinsky: a plugin-hosted Kandinsky 2.2 image tool. See docs/architecture.md for how the targets fit together.
import PackageDescription

// Numeric kernels need AVX2/FMA/F16C code generation; the default x86-64 target is SSE2 only
// (see docs/performance.md). Other architectures build with their defaults.
#if arch(x86_64)
let engineTarget = ["-march=x86-64-v3"]
#else
let engineTarget: [String] = []
#endif
let kernelFlags: [SwiftSetting] = engineTarget.isEmpty ? [] : [.unsafeFlags(["-Xcc"] + engineTarget)]
// The C kernels of VectorMath are written to be vectorised: the engine's target, and no fused multiply-adds, so an
// element's result does not depend on whether it fell in a vector or in the loop's scalar tail.
let vectorMathFlags: [CSetting] = [.unsafeFlags(["-std=c11", "-Wall", "-Werror", "-O3", "-ffp-contract=off"]
                                                + engineTarget)]

/// Variant plugins: (product, target folder under Plugins/). Each is a shared library linking only the C header
/// (and the stateless PluginSupport helpers), never the engine.
let swiftPlugins = [("kandinsky_plugin_text2img", "Text2Img"), ("kandinsky_plugin_img2img", "Img2Img"),
                    ("kandinsky_plugin_inpaint", "Inpaint"), ("kandinsky_plugin_fusion", "Fusion"),
                    ("kandinsky_plugin_controlnet_depth", "ControlNetDepth"), ("kandinsky_plugin_depth", "Depth")]
/// Every plugin library exports only its entry point (Plugins/exports.map).
let exportsOnlyTheEntry = LinkerSetting.unsafeFlags(
    ["-Xlinker", "--version-script=\(Context.packageDirectory)/Plugins/exports.map"])

let package = Package(
    name: "kandinsky",
    platforms: [.macOS(.v13)],
    products: swiftPlugins.map { .library(name: $0.0, type: .dynamic, targets: [$0.1]) } + [
        // The plain-C plugin: proof that a new variant needs only the header.
        .library(name: "kandinsky_plugin_outpaint", type: .dynamic, targets: ["Outpaint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CFFI", pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),
        // oneDNN ships no pkg-config file in Debian: the header is in /usr/include, the library in the default path.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "DNNLBridge", dependencies: ["CDNNL"],
                cSettings: [.unsafeFlags(["-std=c11", "-Wall", "-Werror"])],
                linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),

        // MARK: - Engine
        .target(name: "VectorMath", cSettings: vectorMathFlags),
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "DNNLBridge", "VectorMath"],
                swiftSettings: kernelFlags),
        .target(name: "Checkpoint", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        .target(name: "TorchRandom", swiftSettings: kernelFlags),
        .target(name: "Schedulers", dependencies: ["TensorCore", "TorchRandom", "Checkpoint"],
                swiftSettings: kernelFlags),
        .target(name: "Networks", dependencies: ["TensorCore", "Checkpoint"], swiftSettings: kernelFlags),
        .target(name: "Tokenization"),
        .target(name: "ImageProcessing", dependencies: ["TensorCore", "Checkpoint"], swiftSettings: kernelFlags),
        .target(name: "JPEGBridge", dependencies: ["CJPEG"]),
        // Baseline x86-64 on purpose: it must run on CPUs that lack what kernelFlags compile the engine for.
        .target(name: "CPUFeatures"),
        .target(name: "ImageIO", dependencies: ["ImageProcessing", "CPNG", "JPEGBridge"]),
        .target(name: "Pipelines", dependencies: ["TensorCore", "Checkpoint", "Networks", "Schedulers", "TorchRandom",
                                                  "Tokenization", "ImageProcessing"], swiftSettings: kernelFlags),

        // MARK: - Product: plugin ABI, model server, host
        .target(name: "KandinskyPluginABI"),
        .target(name: "PluginABIRules", dependencies: ["KandinskyPluginABI"]),
        // Where shipped folders (the default model set, the web editor) are found by a running binary.
        .target(name: "ShippedFiles"),
        // SHA-256: the server's image ids, the batch's fingerprints.
        .target(name: "Digest"),
        .target(name: "ModelServer",
                dependencies: ["KandinskyPluginABI", "PluginABIRules", "Pipelines", "Checkpoint", "Networks",
                               "Schedulers", "TensorCore", "TorchRandom", "ImageProcessing", "ShippedFiles"],
                swiftSettings: kernelFlags),

        // Plugin schemas and the rule that checks values against them: no engine, so front ends share it.
        .target(name: "PluginSchema", dependencies: ["KandinskyPluginABI", "PluginABIRules"]),
        .target(name: "PluginHost",
                dependencies: ["KandinskyPluginABI", "PluginABIRules", "PluginSchema", "ModelServer",
                               "ImageProcessing"]),

        // The worker process and its supervisor (no engine: front ends link this, the worker links the engine).
        .target(name: "Supervisor", dependencies: ["PluginSchema"]),
        // `kandinsky serve`: HTTP API, durable job queue (SQLite), jobs run on the supervisor's worker.
        .target(name: "Server",
                dependencies: [.product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "HTTPTypes", package: "swift-http-types"), "Supervisor", "PluginSchema",
                               "ImageIO", "ImageProcessing", "ShippedFiles", "Digest"],
                exclude: ["Web"]),
        // The workflow file format, decoded strictly (the CLI and the workflow fuzzer).
        .target(name: "WorkflowFormat"),
        // `kandinsky batch`: items, shards, fingerprints and the per-shard results of a batch folder.
        .target(name: "Batch", dependencies: ["WorkflowFormat", "Digest", "PluginSchema"]),

        .target(name: "PluginSupport", dependencies: ["KandinskyPluginABI", "PluginABIRules"],
                path: "Plugins/PluginSupport"),
        .target(name: "Outpaint", dependencies: ["KandinskyPluginABI"], path: "Plugins/Outpaint",
                publicHeadersPath: ".",
                cSettings: [.unsafeFlags(["-std=c11", "-Wall", "-Wextra", "-Werror"])],
                linkerSettings: [.linkedLibrary("m"), exportsOnlyTheEntry]),

        .executableTarget(name: "kandinsky", dependencies: [.product(name: "ArgumentParser",
                                                                     package: "swift-argument-parser"), "PluginHost",
                                                            "ModelServer", "ImageIO", "ImageProcessing", "Checkpoint",
                                                            "PluginSchema", "Server",
                                                            "TensorCore", "CPUFeatures", "Supervisor",
                                                            "WorkflowFormat", "Batch", "Digest"],
                          path: "Sources/KandinskyCLI"),

        // MARK: - Tests
        .testTarget(
            name: "ProductTests",
            dependencies: ["PluginHost", "ModelServer", "ImageIO", "ImageProcessing", "KandinskyPluginABI",
                           "Checkpoint", "TensorCore", "Networks", "Pipelines", "PluginSupport", "PluginSchema"],
            exclude: ["Plugins", "ABI-1.0"]
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["TensorCore", "Checkpoint", "TorchRandom", "Schedulers", "Networks", "Tokenization",
                           "ImageProcessing", "Pipelines", "VectorMath"],
            exclude: ["Fixtures"],
            swiftSettings: kernelFlags
        ),
    ] + swiftPlugins.map {
        .target(name: $0.1, dependencies: ["KandinskyPluginABI", "PluginSupport"], path: "Plugins/\($0.1)",
                linkerSettings: [exportsOnlyTheEntry])
    },
    // Kernels hand raw pointers to worker threads by design; strict Sendable checking would reject every one.
    swiftLanguageModes: [.v5]
)

/// libFuzzer harnesses for the parsers of outside input (Tests/Fuzz), built only by tools/fuzz.sh, which sets
/// KANDINSKY_FUZZ and -sanitize=fuzzer: they have no main of their own (libFuzzer brings it), so other builds
/// leave them out.
let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
    ("Safetensors", ["Checkpoint"]), ("ImageFiles", ["ImageIO"]), ("Tokenizer", ["Tokenization"]),
    ("WorkflowFile", ["WorkflowFormat"]),
]
if Context.environment["KANDINSKY_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Tests/Fuzz/FuzzSupport"))
    for fuzzer in fuzzers {
        package.targets.append(.executableTarget(
            name: "Fuzz\(fuzzer.name)", dependencies: fuzzer.dependencies + ["FuzzSupport"],
            path: "Tests/Fuzz/\(fuzzer.name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])] + kernelFlags))
        package.products.append(.executable(name: "Fuzz\(fuzzer.name)", targets: ["Fuzz\(fuzzer.name)"]))
    }
}
