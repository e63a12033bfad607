// swift-tools-version:6.1
import Foundation
import PackageDescription

// A local package's identity is its directory's name: whatever the checkout is called.
let sluiceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sluice = sluiceRoot.lastPathComponent.lowercased()

// Micro-benchmarks of Sluice's parts with ordo-one/benchmark (time and allocations per call).
// A package of its own so that the server's build does not carry the benchmark framework.
//   cd benchmarks/micro && swift package benchmark
let package = Package(
    name: "sluice-micro",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "SluiceMicro",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "SluiceProtocol", package: sluice),
                .product(name: "SluiceDomain", package: sluice),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/SluiceMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
