// swift-tools-version:6.2
import PackageDescription

// `bitnet serve` as its own package: the HTTP service on Hummingbird 2 (SwiftNIO),
// swift-service-lifecycle, swift-log and swift-metrics with a Prometheus endpoint.
// It lives apart from the root package so that an app depending on the BitNet
// library never fetches or builds NIO, and the root keeps its Swift 6.0 floor
// (Hummingbird 2.28 declares tools 6.2).
let package = Package(
    name: "bitnet-server",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bitnet-server", targets: ["bitnet-server"]),
        .library(name: "BitNetServer", targets: ["BitNetServer"]),
    ],
    dependencies: [
        .package(name: "bitnet", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The OpenAI layer and the Hummingbird application, as a library so tests run it in-process.
        .target(
            name: "BitNetServer",
            dependencies: [
                .product(name: "BitNet", package: "bitnet"),
                .product(name: "BitNetJSON", package: "bitnet"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "bitnet-server",
            dependencies: [
                "BitNetServer",
                .product(name: "BitNet", package: "bitnet"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "BitNetServerTests",
            dependencies: [
                "BitNetServer",
                .product(name: "BitNet", package: "bitnet"),
                .product(name: "BitNetJSON", package: "bitnet"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
