// swift-tools-version: 6.1
import PackageDescription

// Hot loops use raw pointers and wrapping index math, so plain -O vectorizes them; preconditions
// (shape checks) stay on.
let numericSettings: [SwiftSetting] = []

let package = Package(
    name: "Rein",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rein", targets: ["rein"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "Optimizers", targets: ["Optimizers"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
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
        .executableTarget(
            name: "rein",
            dependencies: [
                "TensorCore", "Optimizers", "Tokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "TensorCore"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
