// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets over Sluice. Build and run with scripts/fuzz.sh (it passes
// `--sanitize=fuzzer --sanitize=address`, which also gives libFuzzer's main to these executables).
let package = Package(
    name: "sluice-fuzz",
    dependencies: [
        .package(path: "sluice"),  // a link to the repository: a stable package name whatever the checkout is called
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // The request parser alone, fed in random splits.
        .executableTarget(
            name: "FuzzParser",
            dependencies: [
                .product(name: "SluiceProtocol", package: "sluice"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Sequences of commands through the real dispatcher, with time moving: state carries
        // from one command to the next within an input.
        .executableTarget(
            name: "FuzzCommands",
            dependencies: [
                .product(name: "SluiceServer", package: "sluice"),
                .product(name: "SluiceDomain", package: "sluice"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
