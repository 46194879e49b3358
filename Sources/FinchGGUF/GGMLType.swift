/// A ggml tensor type, numbered as in ggml.h (`enum ggml_type`) and gguf-py's `GGMLQuantizationType`.
///
/// Every type carries its block geometry, so types this package cannot dequantise are still
/// sized correctly and reported by name.
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3
    case q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// ggml's spelling, e.g. "Q4_K", "BF16".
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_XXS: return "IQ2_XXS"
        case .iq2_XS: return "IQ2_XS"
        case .iq3_XXS: return "IQ3_XXS"
        case .iq1_S: return "IQ1_S"
        case .iq4_NL: return "IQ4_NL"
        case .iq3_S: return "IQ3_S"
        case .iq2_S: return "IQ2_S"
        case .iq4_XS: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_M: return "IQ1_M"
        case .bf16: return "BF16"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        case .mxfp4: return "MXFP4"
        case .nvfp4: return "NVFP4"
        case .q1_0: return "Q1_0"
        }
    }

    /// The type with ggml's spelling `name` (case-insensitive), if any.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let t = GGMLType.allCases.first(where: { $0.name == upper }) else { return nil }
        self = t
    }

    /// Elements per block (1 for plain scalar types; 32 or 256 for most quantised types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL, .mxfp4: return 32
        case .nvfp4: return 64
        case .q1_0: return 128
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
             .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S, .iq3_S, .iq2_S, .iq4_XS, .iq1_M, .tq1_0, .tq2_0:
            return 256
        }
    }

    /// Bytes per block (as gguf-py's `GGML_QUANT_SIZES`).
    public var typeSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .i64, .f64: return 8
        case .q4_0: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .q8_1: return 4 + 4 + 32
        case .q2_K: return 2 + 2 + 16 + 64          // 84
        case .q3_K: return 2 + 64 + 32 + 12         // 110
        case .q4_K: return 2 + 2 + 128 + 12         // 144
        case .q5_K: return 2 + 2 + 128 + 32 + 12    // 176
        case .q6_K: return 2 + 128 + 64 + 16        // 210
        case .q8_K: return 4 + 256 + 32             // 292
        case .iq2_XXS: return 2 + 64
        case .iq2_XS: return 2 + 64 + 8
        case .iq3_XXS: return 2 + 64 + 32
        case .iq1_S: return 2 + 32 + 16
        case .iq4_NL: return 2 + 16
        case .iq3_S: return 2 + 64 + 32 + 8 + 4
        case .iq2_S: return 2 + 64 + 16
        case .iq4_XS: return 2 + 2 + 128 + 4
        case .iq1_M: return 32 + 16 + 8
        case .tq1_0: return 2 + 4 * 13
        case .tq2_0: return 2 + 64
        case .mxfp4: return 1 + 16
        case .nvfp4: return 4 + 32
        case .q1_0: return 2 + 16
        }
    }

    /// Whether ``GGMLQuants/dequantize(_:_:count:into:)`` supports this type.
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// Whether the type is a block-quantised format (block size > 1).
    public var isQuantized: Bool { blockSize > 1 }
}

extension GGMLType: CustomStringConvertible {
    public var description: String { name }
}
