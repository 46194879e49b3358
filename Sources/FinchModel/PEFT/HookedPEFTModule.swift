import FinchKernels

/// A method that works entirely through `Decoder.hooks` (LoRA, bottleneck adapters): the sequence is the
/// caller's, so the forward, loss and backward are the decoder's own.
public protocol HookedPEFTModule: PEFTModule {}

public extension HookedPEFTModule {
    func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                       attentionMask: [Int]?, positionIds: [Int]?, documentIds: [Int]?) -> Tensor {
        decoder.forwardHidden(ids: ids, batch: batch, length: length, attentionMask: attentionMask, positionIds: positionIds,
                              documentIds: documentIds)
    }

    func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?, computeGradients: Bool) -> CausalLMLoss {
        decoder.trainedTokenLoss(labels: labels, gradientScale: gradientScale, computeGradients: computeGradients)
    }

    func backward(_ decoder: Decoder) { decoder.backward() }
    func backwardHidden(_ decoder: Decoder, _ dHidden: Tensor) { decoder.backwardHidden(dHidden) }
}
