// swift-tools-version:6.0
import PackageDescription

// Layers (lower never imports higher):
//   SluiceProtocol → SluiceDomain → SluiceBackends → SluiceServer → sluice (executable)
// Release builds skip Swift's run-time exclusivity checks in Sluice's own modules (and in the
// NIO code inlined into them): on the request path they cost ~10% of CPU in profiles
// (swift_beginAccess). Debug builds, which every test runs, keep the checks on.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

// Linux only: the C libraries come from Debian (pkg-config, apt) and the code uses Glibc.
let package = Package(
    name: "sluice",
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "sluice-bench", targets: ["sluice-bench"]),
        // For the fuzzers (fuzz/, a package of its own) and programs that embed Sluice.
        .library(name: "SluiceProtocol", targets: ["SluiceProtocol"]),
        .library(name: "SluiceDomain", targets: ["SluiceDomain"]),
        .library(name: "SluiceServer", targets: ["SluiceServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // RESP2 / inline request parser and reply encoder: pure value types over ByteBuffer.
        .target(
            name: "SluiceProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPath
        ),
        // Cache, lease, eviction, limits, breakers, vectors, embedder: pure logic, clocks passed in,
        // no sockets. Its data files (the embedder's token table, the WordNet lexicon; see
        // Resources/NOTICE.md) are compiled into the binary through CSluiceResources.
        .target(
            name: "SluiceDomain",
            dependencies: [
                "CSluiceResources", "CSluiceKernels",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            exclude: ["Resources"],
            swiftSettings: hotPath
        ),
        // Files compiled into the binary with C23 #embed (the Lua scripts of shared mode, the
        // embedder's table, the lexicon), so a `sluice` copied alone has everything it needs.
        .target(name: "CSluiceResources"),
        // The vector scan kernels (int8 and float dot products), AVX-512 VNNI / AVX2 / portable,
        // chosen at run time from the CPU's features: no build flag for users.
        .target(name: "CSluiceKernels"),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The capabilities (exact cache, semantic store, limits, breakers) as protocols, with their
        // embedded, Redis and Redis-down fallback implementations; SQLite and hiredis underneath.
        .target(
            name: "SluiceBackends",
            dependencies: [
                "CSQLite", "CHiredis", "CSluiceResources", "SluiceDomain", "SluiceProtocol",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Lua"],  // compiled in through CSluiceResources
            swiftSettings: hotPath
        ),
        // Listener, connection handler, command dispatch; the HTTP listener (metrics, health,
        // dashboard).
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceProtocol", "SluiceDomain", "SluiceBackends", "CSluiceResources",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            exclude: ["Dashboard"],  // compiled in through CSluiceResources
            swiftSettings: hotPath
        ),
        // `sluice bench`: the load generator (a RESP client on NIO; talks to Sluice and to Redis).
        .target(
            name: "SluiceLoad",
            dependencies: [
                "SluiceDomain",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: hotPath
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceServer", "SluiceDomain", "SluiceBackends", "SluiceLoad", "CSluiceKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Benchmarks and load generation (not part of the server).
        .executableTarget(
            name: "sluice-bench",
            dependencies: [
                "SluiceDomain", "SluiceLoad",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: hotPath
        ),
        .testTarget(
            name: "SluiceProtocolTests",
            dependencies: [
                "SluiceProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "SluiceDomainTests", dependencies: ["SluiceDomain"]),
        .testTarget(name: "SluiceLoadTests", dependencies: [
            "SluiceLoad",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "SluiceBackendsTests", dependencies: [
            "SluiceBackends", "SluiceDomain", "SluiceProtocol",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceServer", "SluiceProtocol", "SluiceDomain", "SluiceBackends",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ]
)
