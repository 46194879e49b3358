import FinchKernels

// Weights kept in a file's own compact type for inference, as llama.cpp keeps them: a bf16 file's projections as
// bf16 (`holdFrozenBaseBF16`), an f16 file's as IEEE half (`holdFrozenBaseF16`), and the LM head (often the tied token embedding, 49152 × 576 for SmolLM2, as many
// bytes as all quantised layers together) as its quantised or bf16 blocks. The fp32 embedding stays for the
// token lookups and for training; only `prefill`/`step` read the compact head, and only while it is frozen.

/// The LM head weight [V, C] in a compact type.
public enum InferenceHead {
    case quantized(QuantizedMatrix)
    case bf16(BF16Matrix)
    case f16(F16Matrix)

    var shape: [Int] {
        switch self {
        case .quantized(let q): return [q.rows, q.cols]
        case .bf16(let b): return [b.rows, b.cols]
        case .f16(let h): return [h.rows, h.cols]
        }
    }
}

extension Decoder {
    /// The key under which a GGUF import hands the head's blocks to `init(config:parameters:quantized:)`.
    public static let inferenceHeadKey = "finch.inference_head"

    /// Holds every frozen projection weight, and the head for decoding, as bf16 (round to nearest even; exact for
    /// a bf16 file's weights) and frees the projections' fp32 tensors. Inference only: these weights have no
    /// backward. Returns how many projections were converted.
    @discardableResult
    public func holdFrozenBaseBF16() throws -> Int {
        try holdFrozenBase("bf16") { .bf16(BF16Matrix(rows: $0.shape[0], cols: $0.shape[1], from: $0.ptr)) }
    }

    /// `holdFrozenBaseBF16` with IEEE half (exact for an f16 file's weights): decoding and prompt processing then
    /// compute in fp32 on the same weights as the fp32 path, from half the bytes.
    @discardableResult
    public func holdFrozenBaseF16() throws -> Int {
        try holdFrozenBase("f16") { .f16(F16Matrix(rows: $0.shape[0], cols: $0.shape[1], from: $0.ptr)) }
    }

    /// Converts every frozen projection (into `bf16Weights` or `f16Weights`, by the case `convert` returns) and
    /// the frozen head (as `inferenceHead`, unless there is one already); the projections' fp32 tensors go.
    private func holdFrozenBase(_ type: String, _ convert: (Tensor) -> InferenceHead) throws -> Int {
        guard config.flavour != .gpt2 else {
            throw ModelFileError("\(type) weights: GPT-2's Conv1D weights cannot be held as \(type) rows; use a Llama-family model")
        }
        var converted = 0
        for name in config.projectionWeightNames where !trainable.contains(name) {
            guard let t = parameters[name] else { continue }   // already compact
            switch convert(t) {
            case .bf16(let b): bf16Weights[name] = b
            case .f16(let h): f16Weights[name] = h
            case .quantized: preconditionFailure("holdFrozenBase: quantised blocks go through quantizeFrozenBase")
            }
            parameters[name] = nil
            converted += 1
        }
        let head = config.headWeightName
        if inferenceHead == nil, !trainable.contains(head), let t = parameters[head] {
            inferenceHead = convert(t)
        }
        return converted
    }

    /// Sets the compact head used by decoding (nil = the fp32 head). Its shape must be [vocab, hidden].
    public func setInferenceHead(_ head: InferenceHead?) throws {
        if let h = head, h.shape != [config.vocabSize, config.hiddenSize] {
            throw ModelFileError("decoder: inference head is \(h.shape), expected [\(config.vocabSize), \(config.hiddenSize)]")
        }
        inferenceHead = head
    }

    /// `headForward` through the compact head when there is one and the head weight is frozen (a trained head
    /// would have moved away from its compact copy).
    func inferenceHeadForward(_ bf: DecoderBuffers, rows: Int, hidden: UnsafePointer<Float>, logits: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize, V = config.vocabSize
        guard let head = inferenceHead, !trainable.contains(config.headWeightName) else {
            guard rows == 1 else { return headForward(bf, rows: rows, hidden: hidden, logits: logits) }
            DecodeGemv.f32(n: V, k: C, x: hidden, w: w(config.headWeightName), ldw: C, beta: 0, y: logits)
            if let lora = hooks?.linearAdapter(module: "lm_head") { lora.forward(x: hidden, ldx: C, y: logits, ldy: V, rows: rows) }
            return
        }
        switch head {
        case .quantized(let q):
            if QuantGemvInt8.available && QuantGemvInt8.supports(q.format) && rows <= QuantGemm.fusedMaxRows {
                QuantGemvInt8.forward(m: rows, x: hidden, ldx: C, w: q, beta: 0, y: logits, ldy: V)
            } else {
                QuantGemm.forward(m: rows, x: hidden, ldx: C, w: q, beta: 0, y: logits, ldy: V)
            }
        case .bf16(let b):
            b.forward(m: rows, x: hidden, ldx: C, beta: 0, y: logits, ldy: V)
        case .f16(let h):
            h.forward(m: rows, x: hidden, ldx: C, beta: 0, y: logits, ldy: V)
        }
        if let lora = hooks?.linearAdapter(module: "lm_head") {
            lora.forward(x: hidden, ldx: C, y: logits, ldy: V, rows: rows)
        }
    }
}
