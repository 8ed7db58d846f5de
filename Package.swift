// swift-tools-version: 6.1
import PackageDescription

// Hot loops use raw pointers and wrapping index math, so -O vectorizes them; preconditions (shape
// checks) stay on. Rein is built from source where it runs, so the numeric targets are compiled for
// the host CPU: AVX2/AVX-512 lanes instead of the SSE2 baseline (GELU forward+backward 6.2 -> see
// `rein bench core`). A binary built this way runs only on CPUs with the builder's features.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "native"]),
]

let package = Package(
    name: "Rein",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rein", targets: ["rein"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "Optimizers", targets: ["Optimizers"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Generation", targets: ["Generation"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "TensorCore",
            dependencies: [
                "COpenBLAS",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            swiftSettings: numericSettings
        ),
        .target(
            name: "Optimizers",
            dependencies: ["TensorCore"],
            swiftSettings: numericSettings
        ),
        .target(name: "Tokenizers"),
        .target(name: "Datasets", dependencies: ["TensorCore", "Tokenizers", .product(name: "Yams", package: "Yams")]),
        .target(name: "Generation", dependencies: ["NN", "TensorCore"]),
        .target(
            name: "NN",
            dependencies: ["TensorCore"],
            swiftSettings: numericSettings
        ),
        // Open MPI loaded at run time (dlopen), so one build serves machines with and without MPI.
        .target(name: "CMPIShim", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "DataParallel", dependencies: ["CMPIShim"]),
        .target(name: "Training", dependencies: ["DataParallel", "TensorCore", "Optimizers"]),
        .target(name: "Alignment", dependencies: ["DataParallel", "Datasets", "NN", "Optimizers", "TensorCore", "Training"]),
        .target(name: "Store", dependencies: ["TensorCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "Report", dependencies: ["Store", .product(name: "Mustache", package: "swift-mustache")]),
        .target(name: "Recipes", dependencies: [
            "Alignment", "Checkpoints", "DataParallel", "Datasets", "Evaluation", "Generation", "NN", "Report", "Store", "TensorCore", "Tokenizers", "Training",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Checkpoints", dependencies: ["TensorCore", "NN", "Tokenizers"], swiftSettings: numericSettings),
        .target(name: "Evaluation", dependencies: ["Checkpoints", "Datasets", "Generation", "NN", "TensorCore", "Tokenizers"]),
        .executableTarget(
            name: "rein",
            dependencies: [
                "TensorCore", "Optimizers", "Tokenizers", "NN", "Generation", "Checkpoints", "Datasets", "Training", "Alignment", "Store",
                "Recipes", "DataParallel",
                "Evaluation",
                "Report",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer targets for the parsers of outside data; scripts/fuzz.sh builds them instrumented.
        .executableTarget(name: "rein-fuzz", dependencies: ["Checkpoints", "Datasets", "NN", "Recipes", "TensorCore", "Tokenizers"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "TensorCore"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TensorCore", "Tokenizers"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Optimizers", "TensorCore"]),
        .testTarget(name: "AlignmentTests", dependencies: ["Alignment", "Checkpoints", "Generation", "NN", "TensorCore", "Datasets", "Tokenizers", "Training", "Store", "Recipes"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "DataParallel", "NN", "Optimizers", "TensorCore"]),
        .testTarget(name: "GenerationTests", dependencies: ["Generation", "NN", "TensorCore"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Store"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "Alignment", "Evaluation", "Store", "Training", "TensorCore", .product(name: "Yams", package: "Yams"), .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "NN", "TensorCore", "Tokenizers", "Generation"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Checkpoints", "Datasets", "Generation", "NN", "TensorCore", "Tokenizers"]),
    ],
    swiftLanguageModes: [.v6]
)
