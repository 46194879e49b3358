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
    func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                       attentionMask: [Int]?, positionIds: [Int]?) -> Tensor
    /// LM head + HF causal-LM loss over the real tokens' labels [B·T] (virtual tokens handled inside).
    func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?) -> CausalLMLoss
    /// Backward of the last loss (or of `dHidden` for a head on the trunk) into `gradients`.
    func backward(_ decoder: Decoder)
    func backwardHidden(_ decoder: Decoder, _ dHidden: Tensor)

    /// Writes `adapter_config.json` + `adapter_model.safetensors` (PEFT's format) into `folder`.
    func save(to folder: URL, baseModel: String) throws
}
