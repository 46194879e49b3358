// swift-tools-version:6.0
import PackageDescription

// Targets are compiled for the host CPU so that SIMD16<Float> lowers to AVX-512 (baseline x86-64 would give
// 128-bit SSE). They are built with -O: bounds, overflow and precondition checks stay on (issue 18). Measured
// side by side against -Ounchecked on this machine: GEMM best-of-runs 1.00x, the gpt2-124m training step +0.2%,
// decode within noise; so the numeric kernels need no unchecked build.
let fast: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "native"])]
// The one exception: the BPE tokenizer's inner loops (pre-tokenizer scanners, merges, word cache) lost 10-11% of
// their throughput under -O (`finch bench tokenizer`, SmolLM2 on 2 MB of text: 65.9 -> 58.8 MB/s per line), so that
// small target alone is built unchecked. Its inputs are fuzzed under ASan (tools/fuzz.sh tokenizer).
let unchecked: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "native"])]

let package = Package(
    name: "Finch",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "finch", targets: ["finch"]),
        .library(name: "FinchKernels", targets: ["FinchKernels"]),
        .library(name: "FinchGGUF", targets: ["FinchGGUF"]),
        .library(name: "FinchModel", targets: ["FinchModel"]),
        .library(name: "FinchData", targets: ["FinchData"]),
        .library(name: "FinchTrain", targets: ["FinchTrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        // Open MPI for data-parallel training (mpirun -np N finch ...); only FinchDistributed imports it.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .target(name: "CSentencePiece",
                cxxSettings: [.unsafeFlags(["-std=c++17"])],
                linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("sentencepiece_train"),
                                 .linkedLibrary("stdc++")]),
        // AVX512-BF16 micro-kernels: C, because Swift cannot name vdpbf16ps; each function carries its own target
        // attribute and runs only after a cpuid check, so the target needs no -march flag.
        .target(name: "CFinchSIMD", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "FinchKernels", dependencies: ["CFinchSIMD"], swiftSettings: fast),
        // The GGUF container (header, metadata, tensor infos, memory-mapped data) and ggml's block formats:
        // shared by FinchModel (weights) and FinchData (vocabularies, chat templates).
        .target(name: "FinchGGUF", swiftSettings: fast),
        // BPE's hot loops over raw bytes: merge table and merges, word cache, pre-tokenizer scanners, byte-level map.
        .target(name: "FinchTokenizerKernels", swiftSettings: unchecked),
        .target(name: "FinchData", dependencies: ["CZstd", "CSentencePiece", "CCrypto", "FinchGGUF", "FinchTokenizerKernels"],
                swiftSettings: fast),
        // FinchModel reads whole models (weights, tokenizer, chat template), so it sits above FinchData (DESIGN.md).
        .target(name: "FinchModel", dependencies: ["FinchKernels", "FinchGGUF", "FinchData"], swiftSettings: fast),
        // The ranks of a data-parallel run: communicator (one process, or MPI), rank-ordered bucketed gradient sums.
        .target(name: "FinchDistributed", dependencies: ["CMPI", "FinchKernels"], swiftSettings: fast),
        .target(name: "FinchTrain", dependencies: ["FinchKernels", "FinchModel", "FinchData", "FinchDistributed",
                                                    .product(name: "Yams", package: "Yams")],
                swiftSettings: fast),
        .target(name: "FinchConformance", dependencies: ["FinchModel"], swiftSettings: fast),
        .target(name: "FinchChat", dependencies: ["FinchModel", "FinchData"]),
        // The command line's own library: renders progress events, turns Ctrl-C into a stop request, binds flags to
        // configuration values. The trainers know nothing of it (DESIGN.md: the trainer knows nothing of terminals).
        .target(name: "FinchCLI", dependencies: ["FinchTrain", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "finch", dependencies: [
            "FinchKernels", "FinchGGUF", "FinchModel", "FinchData", "FinchTrain", "FinchChat", "FinchCLI", "FinchDistributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: fast),
        .testTarget(name: "FinchGGUFTests", dependencies: ["FinchGGUF"], swiftSettings: fast),
        .testTarget(name: "FinchKernelsTests", dependencies: ["FinchKernels", "FinchConformance", "FinchGGUF"], swiftSettings: fast),
        .testTarget(name: "FinchModelTests", dependencies: ["FinchModel", "FinchConformance"], swiftSettings: fast),
        .testTarget(name: "FinchDataTests", dependencies: ["FinchData", "FinchConformance"], swiftSettings: fast),
        .testTarget(name: "FinchTrainTests", dependencies: ["FinchTrain", "FinchConformance", "FinchDistributed"], swiftSettings: fast),
        .testTarget(name: "FinchChatTests", dependencies: ["FinchChat", "FinchData", "FinchModel"]),
        .testTarget(name: "FinchCLITests", dependencies: ["FinchCLI", "FinchTrain", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    ],
    swiftLanguageModes: [.v5]
)
