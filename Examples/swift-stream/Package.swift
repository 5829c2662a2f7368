// swift-tools-version:6.0
// An app that depends on bitnet.swift by path and streams a completion with the async API.
// A published app would write .package(url: "https://github.com/<owner>/bitnet.swift", from: "0.2.0").
import PackageDescription

let package = Package(
    name: "StreamExample",
    dependencies: [.package(name: "bitnet", path: "../..")],
    targets: [
        .executableTarget(name: "StreamExample", dependencies: [.product(name: "BitNet", package: "bitnet")]),
    ]
)
