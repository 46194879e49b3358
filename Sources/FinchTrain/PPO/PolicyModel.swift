import Foundation
import FinchKernels
import FinchModel

/// A causal LM (plain or with LoRA) seen as a policy: per-token log-probabilities of given tokens, their
/// entropy, and the backward of any loss written as a gradient w.r.t. those log-probs (DPO, PPO) plus an
/// optional extra gradient w.r.t. the final hidden states (a value head on the same trunk).
///
/// `logprobs[b·T + t]` is `log p(ids[b, t] | ids[b, <t])` for t ≥ 1 and 0 at t = 0.
public final class PolicyModel {
    public let model: CausalLMModel
    public var decoder: Decoder { model.decoder }
    private var last: (batch: Int, length: Int, ids: [Int], lse: [Float], logits: Tensor, hidden: Tensor)?

    public init(model: CausalLMModel) {
        precondition(model.featureCache == nil, "PolicyModel: feature caching is not supported")
        self.model = model
    }

    /// Name of the LM head weight (the embedding when tied).
    var headName: String {
        let c = decoder.config
        if !c.tieWordEmbeddings { return "lm_head.weight" }
        return c.flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"
    }

    /// The reference policy's switch for a LoRA policy: the adapter off = the base model.
    public var adapterEnabled: Bool {
        get { model.peft?.enabled ?? true }
        set { model.peft?.enabled = newValue }
    }

    /// Log-probs are those of `logits / temperature` (TRL's PPO scores rollouts sampled at a temperature
    /// with the same scaled distribution, for the policy and the reference alike). 1 = the model's own.
    public var temperature: Float = 1

    /// Training mode (LoRA dropout) on or off.
    public func setTraining(_ on: Bool) { PEFTMethods.setTraining(model.peft, on) }

    /// Forward over a right-padded batch. Returns per-token log-probs [B·T] and, when asked, per-token
    /// entropies of the predictive distribution that produced each token (same layout, 0 at t = 0).
    public func forward(ids: [Int], batch B: Int, length T: Int, mask: [Int]?, entropy: Bool = false)
        -> (logprobs: [Float], entropy: [Float]?, hidden: Tensor) {
        let hidden: Tensor
        if let p = model.peft {
            hidden = p.forwardHidden(decoder, ids: ids, batch: B, length: T, attentionMask: mask, positionIds: nil)
        } else {
            hidden = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
        }
        let logits = model.peft?.logits(decoder) ?? decoder.lmHead()
        let V = decoder.config.vocabSize, N = B * T
        var lp = [Float](repeating: 0, count: N)
        var ent: [Float]? = entropy ? [Float](repeating: 0, count: N) : nil
        var lse = [Float](repeating: 0, count: N)
        lp.withUnsafeMutableBufferPointer { lpb in
        lse.withUnsafeMutableBufferPointer { lseb in
            let entPtr = UnsafeMutablePointer<Float>.allocate(capacity: N)
            defer { entPtr.deallocate() }
            entPtr.initialize(repeating: 0, count: N)
            let invT = 1 / temperature
        ThreadPool.shared.parallelFor(N, minChunk: 8) { _, range in
                for n in range {
                    let t = n % T
                    let row = logits.ptr + n * V
                    var m = -Float.infinity
                    for v in 0..<V { m = max(m, row[v] * invT) }
                    var s = 0.0, sz = 0.0
                    for v in 0..<V {
                        let z = row[v] * invT
                        let e = Double(exp(z - m))
                        s += e
                        if entropy { sz += e * Double(z) }
                    }
                    let l = m + Float(log(s))   // logsumexp of the scaled logits
                    lseb[n] = l
                    if entropy { entPtr[n] = Float(Double(l) - sz / s) }
                    if t + 1 < T { lpb[n + 1] = row[ids[n + 1]] * invT - l }
                }
            }
            if entropy {
                // entropy of the distribution that produced token t sits at t (shift by one like logprobs)
                var e = [Float](repeating: 0, count: N)
                for n in 0..<N where n % T + 1 < T { e[n + 1] = entPtr[n] }
                ent = e
            }
        }
        }
        last = (B, T, ids, lse, logits, hidden)
        return (lp, ent, hidden)
    }

    /// Backward of a loss given d loss / d logprobs [B·T] (from the last `forward`) and an optional extra
    /// d loss / d hidden [B·T, C] (added, e.g. a value head's). Accumulates into the trainable gradients.
    public func backward(dLogprobs: [Float], extraDHidden: Tensor? = nil) {
        guard let l = last else { preconditionFailure("PolicyModel.backward: call forward first") }
        let B = l.batch, T = l.length, N = B * T
        let V = decoder.config.vocabSize, C = decoder.config.hiddenSize
        precondition(dLogprobs.count == N, "PolicyModel.backward: \(dLogprobs.count) gradients for \(N) tokens")
        let logits = l.logits, hidden = l.hidden
        let dlogits = Tensor(shape: [N, V])
        let invT = 1 / temperature
        ThreadPool.shared.parallelFor(N, minChunk: 8) { _, range in
            for n in range where n % T + 1 < T {
                let g = dLogprobs[n + 1] * invT
                if g == 0 { continue }
                let row = logits.ptr + n * V, d = dlogits.ptr + n * V
                let lse = l.lse[n]
                // d log p(y) / d z_v = ([v = y] − softmax(z/τ)_v) / τ
                for v in 0..<V { d[v] = -g * exp(row[v] * invT - lse) }
                d[l.ids[n + 1]] += g
            }
        }
        let dHidden = Tensor(shape: [N, C])
        if let e = extraDHidden { dHidden.copy(from: e) }
        let W = decoder.parameters[headName]!
        Gemm.sgemm(transA: false, transB: false, m: N, n: C, k: V, a: dlogits.ptr, lda: V,
                   b: W.ptr, ldb: C, beta: 1, c: dHidden.ptr, ldc: C)
        if model.peft == nil, let gW = decoder.gradients[headName] {
            Gemm.sgemm(transA: true, transB: false, m: V, n: C, k: N, a: dlogits.ptr, lda: V,
                       b: hidden.ptr, ldb: C, beta: 1, c: gW.ptr, ldc: C)
        }
        if let p = model.peft { p.backwardHidden(decoder, dHidden) } else { decoder.backwardHidden(dHidden) }
    }

    /// Writes the policy as a full model folder (LoRA / DoRA merged into the weights) with the tokenizer and chat
    /// template of `source`: what DPO, KTO and PPO leave in `final/` and `best/`.
    public func saveMerged(to folder: URL, source: LoadedModelFolder) throws {
        let d = decoder
        var weights = d.parameters
        if let lora = model.peft as? LoRAModule { weights = try lora.mergedParameters(d.parameters, config: d.config) }
        try HFModelFolder.save(config: d.config, parameters: weights, to: folder,
                               finchInfo: FinchModelInfo(flavour: d.config.flavour, chatTemplate: source.template.name),
                               tokenizerModel: source.tokenizerURL)
        try source.template.save(toModel: folder)
    }
}

