import FinchKernels

/// The activations of one forward pass over `batch × length` tokens, kept for the backward
/// (llm.c style: allocated once per shape and reused by every call with the same shape).
///
/// Activations that are cheap to recompute are not kept per layer: the two norm outputs and the MLP activation
/// (`norm1`, `norm2`, `act`) are one shared buffer each, and the backward recomputes them from the kept norm
/// inputs and statistics (`mid`, `residual`, `rstd`) or the kept MLP input (`mlpIn`) — O(N·C) work against the
/// O(N·C²) of the projections, 40% less activation memory at SmolLM2's shape. The sub-layer outputs `attnOut`,
/// `mlpOut` are shared too unless the backward reads them (`keepSubLayerOutputs`: Gemma's post-norms, residual
/// adapters).
///
/// With `checkpointing` (gradient checkpointing) only the layer inputs `residual` are kept per layer; every other
/// activation is one shared buffer, which the backward refills by running each layer's forward again just before
/// its backward: about a third more compute for a fraction of the memory.
final class DecoderBuffers {
    let batch: Int, length: Int
    /// Whether `attnOut` / `mlpOut` are kept per layer (else one shared buffer each).
    let keepSubLayerOutputs: Bool
    /// Whether only `residual` is kept per layer (the backward recomputes each layer's forward).
    let checkpointing: Bool
    var rows: Int { batch * length }

    // Inputs of the last forward.
    let ids: UnsafeMutablePointer<Int32>
    let positions: UnsafeMutablePointer<Int32>
    let keyMask: Tensor            // [B, T] 1 = real token
    var hasPadding = false
    /// Prompt tuning: the first `promptLength` positions of every row are virtual (id −1).
    var promptLength = 0
    /// Packed rows: the document id of every attention key, [B, keys] (keys = prefix length + T with a
    /// prefix, else T), prefix and virtual positions `Attention.everyDocument`; nil = one document per row.
    var attentionDocuments: [Int32]?

    // Per layer (residual[l] is the input of layer l, residual[L] the output of the last layer).
    let residual: [Tensor]         // L+1 × [N, C]
    let mid: [Tensor]              // residual after the attention sub-layer
    let norm1: [Tensor], norm2: [Tensor]   // one shared tensor each (recomputed in the backward)
    let mean1: [Tensor], rstd1: [Tensor], mean2: [Tensor], rstd2: [Tensor]
    let qkv: [Tensor]              // [N, q | k | v] (q, k after RoPE)
    let attn: [Tensor]             // [N, qDim] attention output before the output projection
    let lse: [Tensor]              // [B, H, T]
    let attnOut: [Tensor]          // [N, C] after the output projection (and adapter)
    let mlpIn: [Tensor]            // [N, F] (gpt2 pre-GELU) or [N, 2F] (gate | up)
    let act: [Tensor]              // [N, F], one shared tensor (recomputed in the backward)
    let mlpOut: [Tensor]           // [N, C]
    // Qwen3 / Gemma 3 per-head q/k norms: the q|k projection outputs before the norm, and the norms' rstd.
    let qkRaw: [Tensor]            // [N, qDim + kvDim] (empty without q/k norms)
    let qkRstd: [Tensor]           // [N, heads + kvHeads]
    // Gemma 3: norms on the attention / MLP outputs (input attnOut / mlpOut, output attnPost / mlpPost).
    let attnPost: [Tensor], mlpPost: [Tensor]   // [N, C] (empty unless Gemma)
    let rstd3: [Tensor], rstd4: [Tensor]        // [N]
    let hidden: Tensor             // [N, C] after the final norm
    let meanF: Tensor, rstdF: Tensor
    var logits: Tensor?            // [N, V], allocated on first use

    // Backward scratch, shared by every layer.
    lazy var dResidual = Tensor(shape: [rows, cfg.hiddenSize])
    lazy var dNorm = Tensor(shape: [rows, cfg.hiddenSize])
    lazy var dSub = Tensor(shape: [rows, cfg.hiddenSize])
    lazy var dQKV = Tensor(shape: [rows, cfg.qkvWidth])
    lazy var dAttn = Tensor(shape: [rows, cfg.qDim])
    lazy var dMlpIn = Tensor(shape: [rows, cfg.mlpInWidth])
    lazy var dAct = Tensor(shape: [rows, cfg.intermediateSize])
    lazy var dHidden = Tensor(shape: [rows, cfg.hiddenSize])
    lazy var dPreNorm = Tensor(shape: [rows, cfg.hiddenSize])

    // Prefix tuning: per layer [B, P+T, kvDim] keys/values (prefix rows first) and their [B, P+T] mask.
    private(set) var prefixLength = 0
    private(set) var prefixedKeys: [Tensor] = [], prefixedValues: [Tensor] = []
    private(set) var prefixedMask: Tensor?
    private(set) var dPrefixedKeys: Tensor?, dPrefixedValues: Tensor?

    func ensurePrefix(_ P: Int) {
        if prefixLength == P && prefixedMask != nil { return }
        prefixLength = P
        let shape = [batch, P + length, cfg.kvDim]
        prefixedKeys = (0..<cfg.numLayers).map { _ in Tensor(shape: shape) }
        prefixedValues = (0..<cfg.numLayers).map { _ in Tensor(shape: shape) }
        prefixedMask = Tensor(shape: [batch, P + length])
        dPrefixedKeys = Tensor(shape: shape); dPrefixedValues = Tensor(shape: shape)
    }

    let cfg: DecoderConfig

    init(config c: DecoderConfig, batch: Int, length: Int, keepSubLayerOutputs: Bool, checkpointing: Bool = false) {
        cfg = c
        self.batch = batch; self.length = length
        self.keepSubLayerOutputs = keepSubLayerOutputs && !checkpointing
        self.checkpointing = checkpointing
        let N = batch * length, C = c.hiddenSize, L = c.numLayers
        ids = .allocate(capacity: max(N, 1)); positions = .allocate(capacity: max(N, 1))
        keyMask = Tensor(shape: [batch, length])
        func per(_ shape: [Int]) -> [Tensor] {
            checkpointing ? [Tensor](repeating: Tensor(shape: shape), count: L) : (0..<L).map { _ in Tensor(shape: shape) }
        }
        residual = (0...L).map { _ in Tensor(shape: [N, C]) }
        func shared(_ shape: [Int]) -> [Tensor] { [Tensor](repeating: Tensor(shape: shape), count: L) }
        mid = per([N, C]); norm1 = shared([N, C]); norm2 = shared([N, C])
        mean1 = per([N]); rstd1 = per([N]); mean2 = per([N]); rstd2 = per([N])
        qkv = per([N, c.qkvWidth]); attn = per([N, c.qDim]); lse = per([batch, c.numHeads, length])
        attnOut = self.keepSubLayerOutputs ? per([N, C]) : shared([N, C]); mlpIn = per([N, c.mlpInWidth])
        act = shared([N, c.intermediateSize]); mlpOut = self.keepSubLayerOutputs ? per([N, C]) : shared([N, C])
        func perIf(_ on: Bool, _ shape: [Int]) -> [Tensor] { on ? per(shape) : [] }
        qkRaw = perIf(c.qkNorm, [N, c.qDim + c.kvDim]); qkRstd = perIf(c.qkNorm, [N, c.numHeads + c.numKVHeads])
        attnPost = perIf(c.gemmaStyle, [N, C]); mlpPost = perIf(c.gemmaStyle, [N, C])
        rstd3 = perIf(c.gemmaStyle, [N]); rstd4 = perIf(c.gemmaStyle, [N])
        hidden = Tensor(shape: [N, C]); meanF = Tensor(shape: [N]); rstdF = Tensor(shape: [N])
    }

    deinit { ids.deallocate(); positions.deallocate() }

    func logitsBuffer() -> Tensor {
        if let l = logits { return l }
        let l = Tensor(shape: [batch, length, cfg.vocabSize]); logits = l; return l
    }
}
