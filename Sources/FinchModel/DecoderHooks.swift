import FinchKernels

/// An additive delta beside one linear projection (LoRA: `y += s·(x Aᵀ) Bᵀ`).
///
/// The decoder calls `forward` right after the base projection has written `y`, and `backward`
/// right after the base projection's backward. Pointers are row-major with row strides
/// (`ldx`, `ldy`, `lddx`) because projections write column slices of fused buffers (q|k|v, gate|up).
/// The adapter owns its parameters and gradients; the decoder keeps `x` alive until the backward.
public protocol LinearAdapter: AnyObject {
    /// y[rows, out] += delta(x[rows, in]).
    func forward(x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int)
    /// Accumulates the adapter's own gradients from dy, and adds ∂delta/∂x·dy into dx when dx is non-nil.
    func backward(x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, ldy: Int,
                  dx: UnsafeMutablePointer<Float>?, lddx: Int, rows: Int)
}

/// A bottleneck adapter on a block's sub-layer output (Houlsby): `h = f(h) + h` before the residual add.
public protocol ResidualAdapter: AnyObject {
    /// output[rows, dim] += f(input) where input is the sub-layer output (output starts as a copy of input).
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, dim: Int)
    /// dInput[rows, dim] += J_fᵀ·dOutput (dInput starts as a copy of dOutput); accumulates own gradients.
    func backward(input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>,
                  rows: Int, dim: Int)
}

/// Which sub-layer of a decoder block a residual adapter follows.
public enum BlockSite: Sendable { case attention, mlp }

/// Extension points of the decoder for parameter-efficient fine-tuning. Every method has a default
/// (no hook), so an implementation only overrides what it needs. Set `Decoder.hooks`.
public protocol DecoderHooks: AnyObject {
    /// The adapter beside the projection with this Hugging Face module path
    /// (e.g. `model.layers.0.self_attn.q_proj`, `transformer.h.3.attn.c_attn`), or nil.
    func linearAdapter(module: String) -> LinearAdapter?
    /// The adapter after the attention or MLP sub-layer of `layer`, or nil.
    func residualAdapter(layer: Int, site: BlockSite) -> ResidualAdapter?
    /// The lowest layer index whose hook parameters need gradients (nil: none). The backward
    /// propagates down to this layer even when every base weight below is frozen.
    var lowestTrainableLayer: Int? { get }
}

public extension DecoderHooks {
    func linearAdapter(module: String) -> LinearAdapter? { nil }
    func residualAdapter(layer: Int, site: BlockSite) -> ResidualAdapter? { nil }
    var lowestTrainableLayer: Int? { nil }
}

/// Per-layer prefix keys/values (prefix tuning): `keys`, `values` are [prefixLength, kvDim] per layer,
/// shared by every row of the batch, prepended to the real keys with no RoPE, always visible.
/// After a backward, `keyGradients`/`valueGradients` (same shapes) hold the accumulated gradients.
public final class PrefixKeyValues {
    public let length: Int
    public let keys: [Tensor]
    public let values: [Tensor]
    public let keyGradients: [Tensor]
    public let valueGradients: [Tensor]

    public init(keys: [Tensor], values: [Tensor]) {
        precondition(keys.count == values.count && !keys.isEmpty, "PrefixKeyValues: one keys and values tensor per layer")
        self.length = keys[0].shape[0]
        self.keys = keys; self.values = values
        keyGradients = keys.map { Tensor(shape: $0.shape) }
        valueGradients = values.map { Tensor(shape: $0.shape) }
    }

    public func zeroGradients() { keyGradients.forEach { $0.zero() }; valueGradients.forEach { $0.zero() } }
}
