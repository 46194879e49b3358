import FinchGGUF
import FinchKernels

// A frozen base held as ggml quantised blocks (QLoRA on the CPU, and inference from quantised weights).
//
// The projection weights of the blocks (q/k/v/o, gate/up/down) that get no gradient can live as Q8_0, Q4_0 or
// Q4_K blocks instead of fp32: `linearForward` multiplies by them through `QuantGemm.forward` and the backward
// takes the input gradient through `QuantGemm.inputGradient`, which dequantise tile by tile, so no
// full-precision copy of a quantised weight exists at any time. Embeddings, norms, biases and the LM head stay
// fp32 (they are small beside the blocks, and the head is often tied to the embeddings).
//
// Formats follow llama.cpp: blocks made by ggml's reference quantiser (bit-identical to `gguf.quants`), and a
// K-format weight whose rows are not a multiple of 256 takes the fallback llama.cpp's quantiser gives it.

extension Decoder {
    /// The formats a frozen base can be held in (`--base-quant`).
    public static let baseQuantFormats: [QuantFormat] = [.q8_0, .q5_0, .q4_0, .q4_1, .q4_K, .q6_K]

    /// Holds every frozen projection weight as `format` blocks and frees its fp32 tensor. Returns how many
    /// weights were converted. GPT-2's Conv1D weights ([in, out]) are refused: quantised rows must run along the
    /// input features. Trainable weights stay fp32 (they need their gradient and optimizer state).
    @discardableResult
    public func quantizeFrozenBase(_ format: QuantFormat) throws -> Int {
        guard config.flavour != .gpt2 else {
            throw ModelFileError("--base-quant: GPT-2's Conv1D weights cannot be held quantised; use a Llama-family model")
        }
        var converted = 0
        for name in config.projectionWeightNames where !trainable.contains(name) {
            guard let t = parameters[name] else { continue }   // already quantised
            let rows = t.shape[0], cols = t.shape[1]
            let f = Self.storageFormat(format, cols: cols)
            let bytes = try GGMLQuantizer.quantize(f.ggmlType, UnsafePointer(t.ptr), count: t.count)
            quantized[name] = try QuantizedMatrix(format: f, rows: rows, cols: cols, bytes: bytes)
            parameters[name] = nil
            converted += 1
        }
        return converted
    }

    /// The format a [rows, cols] weight is held in when `format` is asked for: a K format needs rows of
    /// 256-element super-blocks, and falls back otherwise as llama.cpp's quantiser does (q4_K → q5_0, q6_K → q8_0).
    static func storageFormat(_ format: QuantFormat, cols: Int) -> QuantFormat {
        guard cols % format.blockSize != 0 else { return format }
        switch format {
        case .q6_K: return .q8_0
        default: return .q5_0
        }
    }

    /// A quantised weight as a new fp32 tensor (for merging, export, or a method that needs the full weight).
    public func dequantizedWeight(_ name: String) -> Tensor? {
        guard let q = quantized[name] else { return nil }
        let t = Tensor(shape: [q.rows, q.cols])
        q.dequantize(rows: 0..<q.rows, cols: 0..<q.cols, into: t.ptr, ld: q.cols)
        return t
    }

    /// Every parameter as fp32, quantised ones dequantised (what a merged or exported model is made of).
    public func fullPrecisionParameters() -> [String: Tensor] {
        var all = parameters
        for name in quantized.keys { all[name] = dequantizedWeight(name) }
        return all
    }

    /// Bytes the weights take in memory: fp32 tensors plus quantised blocks.
    public var weightBytes: Int {
        parameters.values.reduce(0) { $0 + 4 * $1.count } + quantized.values.reduce(0) { $0 + $1.byteCount }
            + bf16Weights.values.reduce(0) { $0 + $1.byteCount } + f16Weights.values.reduce(0) { $0 + $1.byteCount }
    }
}

extension QuantFormat {
    /// The ggml tensor type of these blocks.
    public var ggmlType: GGMLType {
        switch self {
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q4_K: return .q4_K
        case .q6_K: return .q6_K
        case .q5_0: return .q5_0
        }
    }

    /// The format of a ggml tensor type, nil when the kernels cannot multiply by it directly.
    public init?(_ type: GGMLType) {
        guard let f = QuantFormat.allCases.first(where: { $0.ggmlType == type }) else { return nil }
        self = f
    }
}
