import Foundation
import FinchKernels

/// A parameter-efficient fine-tuning method attached to a frozen (or partly frozen) `Decoder`:
/// LoRA/DoRA, bottleneck adapters, prefix tuning, prompt tuning.
///
/// The trainer treats every method alike: attach, run `forwardHidden` / `causalLMLoss` / `backward`
/// through the module (so methods that prepend virtual tokens can shift positions, masks and labels),
/// optimise `parameters` with `gradients`, save in PEFT's folder format.
public protocol PEFTModule: AnyObject {
    /// PEFT's name of the method: "LORA", "PROMPT_TUNING", "PREFIX_TUNING", "ADAPTER" (Finch-only).
    var peftType: String { get }
    /// Trainable tensors under their PEFT adapter key names (as in `adapter_model.safetensors`).
    var parameters: [String: Tensor] { get }
    /// Gradients of `parameters` (same names and shapes), accumulated by `backward` until `zeroGradients`.
    var gradients: [String: Tensor] { get }
    func zeroGradients()

    /// Installs the method's hooks into `decoder` (hooks, prefix, ...). `enabled = false` turns the
    /// method off without detaching (PPO's reference policy = the base with the adapter switched off).
    func attach(to decoder: Decoder)
    var enabled: Bool { get set }

    /// Runs the trunk with the method active; returns hidden states for the real tokens [B, T, C].
    /// `positionIds` are the real tokens' positions (methods with virtual tokens shift them);
    /// `documentIds` [B·T] keep packed documents from attending to each other (see `Decoder.forwardHidden`).
    func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                       attentionMask: [Int]?, positionIds: [Int]?, documentIds: [Int]?) -> Tensor
    /// LM head + HF causal-LM loss over the real tokens' labels [B·T] (virtual tokens handled inside), on the
    /// trained positions only (`Decoder.trainedTokenLoss`). With `computeGradients` it prepares `backward`;
    /// without it (evaluation) it only measures.
    func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?, computeGradients: Bool) -> CausalLMLoss
    /// Backward of the last loss (or of `dHidden` for a head on the trunk) into `gradients`.
    func backward(_ decoder: Decoder)
    func backwardHidden(_ decoder: Decoder, _ dHidden: Tensor)

    /// Writes `adapter_config.json` + `adapter_model.safetensors` (PEFT's format) into `folder`.
    func save(to folder: URL, baseModel: String) throws

    // Later requirements, each with a default (see the extension below).

    /// Training mode (LoRA dropout on) or evaluation mode (off). Default: ignored.
    func setTraining(_ training: Bool)
    /// Logits [B, T, V] of the real tokens after `forwardHidden` (virtual tokens left out).
    /// Default: `decoder.lmHead()`.
    func logits(_ decoder: Decoder) -> Tensor
    /// Prepares an empty `cache` for generation with the method active (prefix keys/values or the
    /// virtual tokens go in first), so `decoder.prefill` / `generate` continue after them. Default: nothing.
    func primeCache(_ decoder: Decoder, cache: KVCache)
    /// The virtual tokens of prompt or prefix tuning: the positions `primeCache` fills while enabled. Default: 0.
    var virtualTokens: Int { get }
    /// Number of trainable scalars (the sum of `parameters`' sizes).
    var trainableParameterCount: Int { get }
}

// MARK: - Defaults of the later requirements

public extension PEFTModule {
    /// The loss of a training step: prepares `backward`.
    func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?) -> CausalLMLoss {
        causalLMLoss(decoder, labels: labels, gradientScale: gradientScale, computeGradients: true)
    }

    /// `forwardHidden` over rows of one document each.
    func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                       attentionMask: [Int]?, positionIds: [Int]?) -> Tensor {
        forwardHidden(decoder, ids: ids, batch: batch, length: length, attentionMask: attentionMask,
                      positionIds: positionIds, documentIds: nil)
    }

    func setTraining(_ training: Bool) {}
    func logits(_ decoder: Decoder) -> Tensor { decoder.lmHead() }
    func primeCache(_ decoder: Decoder, cache: KVCache) {}
    var virtualTokens: Int { 0 }
    var trainableParameterCount: Int { parameters.values.reduce(0) { $0 + $1.count } }
}
