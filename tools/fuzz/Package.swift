// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for Finch's parsers (issue 18, item 4). Build and run them with `tools/fuzz.sh SECONDS`;
// the sanitizer flags are given on the command line (they must reach the Finch targets too, so that the
// parsers are instrumented for coverage and AddressSanitizer):
//
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// Each target defines `LLVMFuzzerTestOneInput`; libFuzzer supplies `main`.
let fuzzers = ["safetensors", "gguf", "jsonl", "manifest", "template", "tokenizer"]

let package = Package(
    name: "FinchFuzz",
    platforms: [.macOS(.v13)],
    products: fuzzers.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) },
    dependencies: [.package(name: "Finch", path: "../..")],
    targets: [
        .target(name: "FuzzSupport"),
    ] + fuzzers.map { name in
        .executableTarget(name: "fuzz-\(name)", dependencies: [
            "FuzzSupport",
            .product(name: "FinchGGUF", package: "Finch"),
            .product(name: "FinchData", package: "Finch"),
            .product(name: "FinchModel", package: "Finch"),
        ], path: "Sources/\(name)")
    },
    swiftLanguageModes: [.v5]
)
