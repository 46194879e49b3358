/// The ggml block formats Finch keeps frozen weights in (byte layouts as ggml's `block_*` structs).
///
/// Each row of a matrix is a run of blocks; a block holds `blockSize` consecutive elements in
/// `blockBytes` bytes. K formats (256 elements) are read in 32-element sub-blocks, so column ranges
/// of a dequantisation only need to be multiples of 32 for every format.
public enum QuantFormat: String, CaseIterable, Sendable {
    case q8_0, q4_0, q4_1, q5_0, q4_K, q6_K

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .q8_0, .q4_0, .q4_1, .q5_0: return 32
        case .q4_K, .q6_K: return 256
        }
    }

    /// Bytes per block in ggml's layout.
    public var blockBytes: Int {
        switch self {
        case .q8_0: return 34   // f16 d, i8 qs[32]
        case .q4_0: return 18   // f16 d, u8 qs[16]
        case .q4_1: return 20   // f16 d, f16 m, u8 qs[16]
        case .q5_0: return 22   // f16 d, u32 qh, u8 qs[16]
        case .q4_K: return 144  // f16 d, f16 dmin, u8 scales[12], u8 qs[128]
        case .q6_K: return 210  // u8 ql[128], u8 qh[64], i8 scales[16], f16 d
        }
    }

    /// Storage cost in bits per weight (for reports).
    public var bitsPerWeight: Double { Double(blockBytes * 8) / Double(blockSize) }
}

/// A quantised matrix that cannot be built as asked (its message names the shape and the format).
public struct QuantError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
