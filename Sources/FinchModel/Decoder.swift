import Foundation
import FinchKernels

// MARK: - Design
//
// `Decoder` is a GPT-2, Llama, Qwen2, Qwen3 or Gemma 3 decoder (see `DecoderConfig.flavour`) with an explicit
// forward and backward per layer, in the style of llm.c: every activation the backward needs lives in
// preallocated buffers (`DecoderBuffers`) reused by every call with the same batch × length.
// Parameters are held under their Hugging Face names (GPT-2 Conv1D weights stay [in, out]).
//
// The Llama family shares one block: [q|k|v] projections (Qwen2: with biases) → per-head q/k RMSNorm
// (Qwen3, Gemma 3) → RoPE (per-layer table: Gemma 3's sliding layers have their own base; Llama 3 /
// linear frequency scaling) → attention (sliding window on `sliding_attention` layers; Gemma scale
// query_pre_attn_scalar^-0.5) → o_proj (→ Gemma post-attention norm) → residual; MLP likewise
// (SwiGLU, or Gemma's gelu_tanh(gate)·up and post-feedforward norm). Gemma norms multiply by (1 + w)
// and token embeddings are scaled by √hidden.
//
// Training step:
//     let hidden = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
//     let logits = decoder.lmHead()                       // [B, T, V]
//     let loss = decoder.causalLMLoss(labels: labels)      // HF shift, ignore -100, batch mean; keeps dlogits
//     decoder.backward()                                   // LM head + trunk; accumulates into `gradients`
// Packed rows (several documents in one row): pass `positionIds` that restart at each document and
// `documentIds`; a token then attends only within its document, forward and backward alike.
// A reward / value / classification head uses the trunk only: `forwardHidden`, its own head on the
// returned [B, T, C] hidden states, then `backwardHidden(dHidden)` with its gradient w.r.t. them.
//
// Trainable set: `trainable` names the parameters that get gradients (default: all). Frozen
// parameters get no gradient buffer; the backward stops below the lowest layer that still needs
// a gradient (a trainable base weight, or a hook's `lowestTrainableLayer`), and skips weight
// gradients of frozen projections. Gradients accumulate (`+=`) until `zeroGradients()`, so several
// micro-batches can be summed.
//
// Extension points for PEFT (set `hooks`, an object conforming to `DecoderHooks`):
//   - `linearAdapter(module:)`: a `LinearAdapter` beside any projection, addressed by its HF module
//     path (`model.layers.3.self_attn.q_proj`, `transformer.h.0.attn.c_attn`, ...): LoRA.
//     Called after the base projection in the forward, after its backward in the backward.
//   - `residualAdapter(layer:site:)`: a bottleneck `ResidualAdapter` after the attention or MLP sub-layer.
//   - `prefix` (`PrefixKeyValues`): per-layer keys/values prepended to every row's keys, no RoPE,
//     always visible; real tokens keep the positions they are given (pass `n_virtual + i`).
//     Their gradients are accumulated into `prefix.keyGradients/valueGradients`.
//   - prompt tuning: `forwardHidden(..., prependEmbeddings:)` places [P, C] embeddings before the
//     token embeddings of every row; their gradient is `promptEmbeddingGradient` after a backward.
// Incremental decoding: `KVCache` + `prefill`/`step` (DecoderGeneration.swift), `generate` (Generation.swift).

/// A GPT-2 / Llama-family (Llama, Qwen2, Qwen3, Gemma 3) decoder with forward, backward, KV-cached decoding
/// and PEFT extension points.
public final class Decoder {
    public let config: DecoderConfig
    /// Every parameter under its Hugging Face name (shapes as `config.parameterShapes()`).
    public var parameters: [String: Tensor]
    /// Frozen projection weights held as quantised blocks instead of fp32 (absent from `parameters`);
    /// see DecoderQuantizedBase.swift.
    public internal(set) var quantized: [String: QuantizedMatrix] = [:]
    /// Frozen projection weights held as bf16 for inference (`holdFrozenBaseBF16`; absent from `parameters`).
    public internal(set) var bf16Weights: [String: BF16Matrix] = [:]
    /// Frozen projection weights held as IEEE half for inference (`holdFrozenBaseF16`; absent from `parameters`).
    public internal(set) var f16Weights: [String: F16Matrix] = [:]
    /// The LM head in the file's own type, used by `prefill`/`step` only (see DecoderInferenceWeights.swift).
    public internal(set) var inferenceHead: InferenceHead?
    /// True inside `prefill`/`step`: products may take the inference-only kernels (int8 activations).
    var inferring = false
    /// Gradients of the trainable parameters (allocated on the first backward), same names.
    public private(set) var gradients: [String: Tensor] = [:]
    /// Names of the parameters that get gradients. Changing it drops gradients of frozen names.
    public var trainable: Set<String> {
        didSet {
            precondition(quantized.keys.allSatisfy { !trainable.contains($0) },
                         "decoder: a weight held quantised cannot be trainable")
            gradients = gradients.filter { trainable.contains($0.key) }
        }
    }
    /// PEFT extension points (LoRA, adapters); nil = plain decoder.
    public var hooks: DecoderHooks?
    /// Prefix-tuning keys/values, prepended in every layer; nil = none.
    public var prefix: PrefixKeyValues?
    /// Prompt tuning: the [P, C] embeddings given to the last `forwardHidden`, and after a backward
    /// the gradient w.r.t. them (accumulated until reset to nil or `zeroGradients()`).
    public internal(set) var promptEmbeddings: Tensor?
    public internal(set) var promptEmbeddingGradient: Tensor?
    /// Training-only inverted dropout (Hugging Face GPT-2 `resid_pdrop` positions): probability p of
    /// zeroing each element of the attention and MLP sub-layer outputs before their residual add
    /// (kept elements scaled by 1/(1-p)). Takes effect only in `forwardHidden` while `training` is true;
    /// 0 = the exact no-dropout path.
    public var dropout: Float = 0
    /// Seed of the dropout masks.
    public var dropoutSeed: UInt64 = 0
    /// Counter the masks are drawn from (a trainer sets it to its micro-batch count before each
    /// training forward, so a resumed run draws the same masks). Masks are a function of
    /// (seed, step, layer, site) only, and the backward re-derives the forward's.
    public var dropoutStep: UInt64 = 0
    /// Arithmetic of the decoder's matrix products (projections, LM head; forward and backward alike):
    /// `.bf16` rounds both operands to bf16 and accumulates in fp32 (`vdpbf16ps`), as PyTorch's bf16 autocast
    /// does; weights, gradients and optimizer state stay fp32. `.fp32` (the default) is bit-for-bit the fp32 path.
    /// Attention, norms, softmax and the small PEFT products stay fp32 either way.
    public var precision: GemmPrecision = .fp32
    /// Gradient checkpointing: keep only each layer's input and run the layer's forward again in the backward
    /// (see DecoderBuffers). Same gradients; about a third more compute, much less activation memory.
    /// LoRA dropout draws a new mask per forward, so it must be 0 with this on (trainers check).
    public var recomputeActivations = false
    /// Training mode: dropout is applied only when true. Evaluation, KV-cached decoding and generation never drop.
    public var training = false
    /// Called after each layer's backward with its index (top layer first): that layer's parameter gradients are
    /// final for this backward, so a data-parallel trainer can start summing them while the layers below run.
    public var afterLayerBackward: ((Int) -> Void)?
    /// The dropout of the last `forwardHidden` (nil = none), which its backward re-derives.
    var forwardDropout: DropoutStream?

    let rope: RopeTable?
    /// RoPE of the sliding-window layers when they have their own base (Gemma 3), else nil.
    let localRope: RopeTable?
    var buffers: DecoderBuffers?
    var inferenceBuffers: DecoderBuffers?
    var stepBuffers: DecoderBuffers?
    var dlogitsReady = false
    var dlogitsStore: Tensor?
    /// Set by `trainedTokenLoss`: the trained positions and the gradient w.r.t. their hidden rows.
    var trainedHead: TrainedHeadGradient?

    /// A decoder over existing weights. Throws a `ModelFileError` naming any missing tensor or
    /// shape mismatch (every name of `config.parameterShapes()` must be present).
    public init(config: DecoderConfig, parameters: [String: Tensor], quantized: [String: QuantizedMatrix] = [:]) throws {
        for (name, shape) in config.parameterShapes() {
            if let q = quantized[name] {
                guard [q.rows, q.cols] == shape else {
                    throw ModelFileError("decoder: quantised tensor '\(name)' is \(q.rows) × \(q.cols), expected \(shape)")
                }
                continue
            }
            guard let t = parameters[name] else {
                throw ModelFileError("decoder: missing parameter tensor '\(name)' (expected shape \(shape))")
            }
            guard t.shape == shape else {
                throw ModelFileError("decoder: tensor '\(name)' has shape \(t.shape), expected \(shape)")
            }
        }
        guard config.numHeads % config.numKVHeads == 0 else {
            throw ModelFileError("decoder: \(config.numHeads) attention heads is not a multiple of \(config.numKVHeads) kv heads")
        }
        self.config = config
        self.parameters = parameters
        var blocks = quantized
        self.inferenceHead = blocks.removeValue(forKey: Decoder.inferenceHeadKey).map { .quantized($0) }
        self.quantized = blocks
        self.trainable = Set(config.parameterShapes().map { $0.name }).subtracting(blocks.keys)
        if !config.flavour.usesRoPE {
            self.rope = nil
        } else if let scaling = config.ropeScaling {
            let inv = RopeTable.defaultInverseFrequencies(headDim: config.headDim, theta: config.ropeTheta)
            self.rope = RopeTable(headDim: config.headDim, inverseFrequencies: scaling.apply(inv), maxPositions: config.maxPositions)
        } else {
            self.rope = RopeTable(headDim: config.headDim, theta: config.ropeTheta, maxPositions: config.maxPositions)
        }
        let sliding = (0..<config.numLayers).contains { config.isSlidingLayer($0) }
        if config.flavour == .gemma3, sliding {   // Gemma 3's sliding layers: their own base, never scaled
            self.localRope = RopeTable(headDim: config.headDim, theta: config.localRopeTheta ?? config.ropeTheta,
                                       maxPositions: config.maxPositions)
        } else {
            self.localRope = nil
        }
    }

    /// The rotary table of layer `l` (sliding layers may have their own base), nil for GPT-2.
    func ropeTable(_ l: Int) -> RopeTable? {
        config.isSlidingLayer(l) ? (localRope ?? rope) : rope
    }

    /// A randomly initialised decoder: matrices and embeddings normal(0, 0.02), residual output
    /// projections normal(0, 0.02/√(2·layers)) (GPT-2), norm weights 1, biases 0.
    public convenience init(config: DecoderConfig, seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        var params: [String: Tensor] = [:]
        let residualStd = 0.02 / Float(2 * max(config.numLayers, 1)).squareRoot()
        for (name, shape) in config.parameterShapes() {
            let t = Tensor(shape: shape)
            if name.hasSuffix(".bias") {
                // zero
            } else if shape.count == 1 {
                // Gemma norms scale by (1 + w): HF initialises w to 0.
                t.buffer.update(repeating: config.gemmaStyle ? 0 : 1)
            } else {
                let residual = name.hasSuffix("attn.c_proj.weight") || name.hasSuffix("mlp.c_proj.weight")
                    || name.hasSuffix("o_proj.weight") || name.hasSuffix("down_proj.weight")
                let std: Float = residual ? residualStd : 0.02
                var i = 0
                while i < t.count {   // Box–Muller gives two normals per draw
                    let (a, b) = rng.fastNormalPair()
                    t[i] = a * std
                    if i + 1 < t.count { t[i + 1] = b * std }
                    i += 2
                }
            }
            params[name] = t
        }
        try! self.init(config: config, parameters: params)
    }

    /// Sets every gradient to zero (keeps the buffers).
    public func zeroGradients() {
        for g in gradients.values { g.zero() }
        promptEmbeddingGradient?.zero()
        prefix?.zeroGradients()
    }

    // MARK: parameter access

    @inline(__always) func w(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let t = parameters[name] else { preconditionFailure("decoder: parameter '\(name)' missing") }
        return t.ptr
    }

    /// The gradient buffer of a trainable parameter (allocated on first use), nil when frozen.
    func grad(_ name: String) -> UnsafeMutablePointer<Float>? {
        guard trainable.contains(name) else { return nil }
        if let g = gradients[name] { return g.ptr }
        guard let p = parameters[name] else { return nil }
        let g = Tensor(shape: p.shape)
        gradients[name] = g
        return g.ptr
    }

    /// Allocates every trainable gradient now (optimizers want the full set before the first step).
    public func allocateGradients() { for name in trainable { _ = grad(name) } }

    // MARK: projections

    /// `linearForward` of several projections of the same x into columns of one y (q/k/v, gate/up). While
    /// decoding from quantised weights the products run as one int8 call (one dispatch, x quantised once).
    func linearForward(_ specs: [LinearSpec], x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        let blocks = specs.compactMap { quantized[$0.weight] }
        guard specs.count > 1, inferring, rows <= QuantGemm.fusedMaxRows, QuantGemvInt8.available, blocks.count == specs.count,
              blocks.allSatisfy({ QuantGemvInt8.supports($0.format) }) else {
            for s in specs { linearForward(s, x: x, ldx: ldx, y: y, ldy: ldy, rows: rows) }
            return
        }
        QuantGemvInt8.forward(m: rows, x: x, ldx: ldx, zip(blocks, specs).map { ($0, y + $1.column) }, beta: 0, ldy: ldy)
        for s in specs {
            let yc = y + s.column
            if s.hasBias {
                let b = w(s.bias)
                for r in 0..<rows { VectorMath.add(b, into: yc + r * ldy, s.outFeatures) }
            }
            hooks?.linearAdapter(module: s.module)?.forward(x: x, ldx: ldx, y: yc, ldy: ldy, rows: rows)
        }
    }

    /// y[rows, out] (columns `spec.column...` of a buffer with row stride ldy) = x·W (+ b) (+ adapter).
    func linearForward(_ s: LinearSpec, x: UnsafePointer<Float>, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        let yc = y + s.column
        if let q = quantized[s.weight] {
            if inferring && QuantGemvInt8.available && QuantGemvInt8.supports(q.format) && rows <= QuantGemm.fusedMaxRows {
                QuantGemvInt8.forward(m: rows, x: x, ldx: ldx, w: q, beta: 0, y: yc, ldy: ldy)
            } else {
                // Prompt processing multiplies the dequantised tiles in bf16 (inference only: x and the tile rounded
                // to bf16, fp32 sums), about twice sgemm's rate; training keeps the decoder's precision.
                QuantGemm.forward(m: rows, x: x, ldx: ldx, w: q, beta: 0, y: yc, ldy: ldy, precision: inferring ? .bf16 : precision)
            }
        } else if let b = bf16Weights[s.weight] {
            b.forward(m: rows, x: x, ldx: ldx, beta: 0, y: yc, ldy: ldy)
        } else if let h = f16Weights[s.weight] {
            h.forward(m: rows, x: x, ldx: ldx, beta: 0, y: yc, ldy: ldy)
        } else if s.conv1D {
            let W = w(s.weight)
            Gemm.gemm(precision: precision, transA: false, transB: false, m: rows, n: s.outFeatures, k: s.inFeatures,
                       a: x, lda: ldx, b: W, ldb: s.outFeatures, beta: 0, c: yc, ldc: ldy)
        } else if inferring && rows == 1 {
            DecodeGemv.f32(n: s.outFeatures, k: s.inFeatures, x: x, w: w(s.weight), ldw: s.inFeatures, beta: 0, y: yc)
        } else {
            Gemm.gemm(precision: precision, transA: false, transB: true, m: rows, n: s.outFeatures, k: s.inFeatures,
                       a: x, lda: ldx, b: w(s.weight), ldb: s.inFeatures, beta: 0, c: yc, ldc: ldy)
        }
        if s.hasBias {
            let b = w(s.bias)
            for r in 0..<rows { VectorMath.add(b, into: yc + r * ldy, s.outFeatures) }
        }
        hooks?.linearAdapter(module: s.module)?.forward(x: x, ldx: ldx, y: yc, ldy: ldy, rows: rows)
    }

    /// Backward of `linearForward`: weight/bias gradients when trainable; dx (+)= dy·Wᵀ when dx is given
    /// (`accumulate` false overwrites dx).
    func linearBackward(_ s: LinearSpec, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, ldy: Int,
                        dx: UnsafeMutablePointer<Float>?, lddx: Int, accumulate: Bool, rows: Int) {
        let dyc = dy + s.column
        if let gW = grad(s.weight) {
            if s.conv1D {   // dW[in, out] += xᵀ·dy
                Gemm.gemm(precision: precision, transA: true, transB: false, m: s.inFeatures, n: s.outFeatures, k: rows,
                           a: x, lda: ldx, b: dyc, ldb: ldy, beta: 1, c: gW, ldc: s.outFeatures)
            } else {        // dW[out, in] += dyᵀ·x
                Gemm.gemm(precision: precision, transA: true, transB: false, m: s.outFeatures, n: s.inFeatures, k: rows,
                           a: dyc, lda: ldy, b: x, ldb: ldx, beta: 1, c: gW, ldc: s.inFeatures)
            }
        }
        if s.hasBias, let gb = grad(s.bias) {
            VectorMath.addColumnSums(dyc, rows: rows, n: s.outFeatures, ldx: ldy, into: gb)
        }
        if let dx = dx, let q = quantized[s.weight] {
            QuantGemm.inputGradient(m: rows, dy: dyc, lddy: ldy, w: q, beta: accumulate ? 1 : 0, dx: dx, lddx: lddx,
                                    precision: precision)
        } else if let dx = dx {
            precondition(bf16Weights[s.weight] == nil && f16Weights[s.weight] == nil,
                         "decoder: '\(s.weight)' is held as bf16/f16 for inference (holdFrozenBaseBF16/F16), which has no backward")
            let W = w(s.weight)
            if s.conv1D {
                Gemm.gemm(precision: precision, transA: false, transB: true, m: rows, n: s.inFeatures, k: s.outFeatures,
                           a: dyc, lda: ldy, b: W, ldb: s.outFeatures, beta: accumulate ? 1 : 0, c: dx, ldc: lddx)
            } else {
                Gemm.gemm(precision: precision, transA: false, transB: false, m: rows, n: s.inFeatures, k: s.outFeatures,
                           a: dyc, lda: ldy, b: W, ldb: s.inFeatures, beta: accumulate ? 1 : 0, c: dx, ldc: lddx)
            }
        }
        hooks?.linearAdapter(module: s.module)?.backward(x: x, ldx: ldx, dy: dyc, ldy: ldy, dx: dx, lddx: lddx, rows: rows)
    }

    // MARK: norms

    func normForward(_ module: String, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                     mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, rows: Int) {
        let C = config.hiddenSize
        if config.flavour == .gpt2 {
            LayerNorm.forward(x: x, weight: w(module + ".weight"), bias: w(module + ".bias"), y: y,
                              mean: mean, rstd: rstd, rows: rows, dim: C, eps: config.normEps)
        } else {
            withNormWeight(module) { RMSNorm.forward(x: x, weight: $0, y: y, rstd: rstd, rows: rows, dim: C, eps: config.normEps) }
        }
    }

    /// dx += norm backward (when dx is given); weight/bias gradients when trainable.
    func normBackward(_ module: String, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                      mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, rows: Int) {
        let C = config.hiddenSize
        if config.flavour == .gpt2 {
            LayerNorm.backward(dy: dy, x: x, weight: w(module + ".weight"), mean: mean, rstd: rstd, dx: dx,
                               dweight: grad(module + ".weight"), dbias: grad(module + ".bias"), rows: rows, dim: C)
        } else {
            withNormWeight(module) {
                RMSNorm.backward(dy: dy, x: x, weight: $0, rstd: rstd, dx: dx, dweight: grad(module + ".weight"), rows: rows, dim: C)
            }
        }
    }

    /// Runs `body` with the multiplier an RMSNorm applies: its weight, or for Gemma `1 + weight`
    /// (float32, as Gemma3RMSNorm computes it). The weight gradient is the same in both cases.
    func withNormWeight<R>(_ module: String, _ body: (UnsafePointer<Float>) -> R) -> R {
        let weight = w(module + ".weight")
        guard config.gemmaStyle else { return body(weight) }
        let n = parameters[module + ".weight"]!.count
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { scratch.deallocate() }
        for i in 0..<n { scratch[i] = 1 + weight[i] }
        return body(scratch)
    }
}
