// swift-tools-version:6.0
import PackageDescription

// No unsafeFlags and no -march: every SIMD function carries its own
// __attribute__((target(...))) and is chosen at run time (CKernels/src/bn_dispatch.c),
// so this package stays usable as a dependency and its binaries run on any x86-64 or arm64.
let package = Package(
    name: "bitnet",
    platforms: [.macOS(.v13)],
    products: [
        // What an app links: load a model, sessions, generate, tokenize, chat.
        .library(name: "BitNet", targets: ["BitNet"]),
        // Hugging Face checkpoints -> GGUF, GGUF re-encoding, synthetic models (`bitnet convert`, `synth`).
        .library(name: "BitNetConvert", targets: ["BitNetConvert"]),
        // JSON with byte-offset errors, shared by the converter, the CLI and the server package.
        .library(name: "BitNetJSON", targets: ["BitNetJSON"]),
        .library(name: "CKernels", targets: ["CKernels"]),
        .executable(name: "bitnet", targets: ["BitNetCLI"]),
        // The engine for C and C++ (Sources/BitNetCAPIHeader/include/bitnet.h; `make install` adds pkg-config).
        .library(name: "BitNetCAPI", type: .dynamic, targets: ["BitNetC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            sources: ["src"],
            publicHeadersPath: "include",
            cSettings: [.define("_GNU_SOURCE"), .headerSearchPath("src")],
            linkerSettings: [.linkedLibrary("pthread", .when(platforms: [.linux]))]
        ),
        // OpenBLAS is only the fp32 baseline of the benchmarks: the CLI links it,
        // the BitNet library does not, so depending on BitNet never needs OpenBLAS.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "BitNet", dependencies: ["CKernels"]),
        .target(name: "BitNetJSON"),
        // Conversion is its own target so a program that only runs models never compiles it.
        .target(name: "BitNetConvert", dependencies: ["BitNet", "BitNetJSON", "CKernels"]),
        // The C API: the header (and its default-params functions) as a C target, so the
        // Swift implementation reads the same structs a C caller passes.
        .target(name: "BitNetCAPIHeader", path: "Sources/BitNetCAPIHeader"),
        .target(name: "BitNetC", dependencies: ["BitNet", "BitNetCAPIHeader"], exclude: ["bitnet.pc.in"]),
        .executableTarget(
            name: "BitNetCLI",
            dependencies: [
                "BitNet", "BitNetConvert", "BitNetJSON", "CKernels", "COpenBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // the small Shakespeare model trained by tools/train: the default when no -m is given
            resources: [.copy("Resources/bitnet-shakespeare-i2_s.gguf")]
        ),
        // Fixtures are read from the source tree (#filePath), so they are not bundled.
        .testTarget(name: "BitNetTests", dependencies: ["BitNet", "BitNetConvert", "BitNetJSON", "CKernels"], exclude: ["Fixtures"]),
    ]
)
