import Foundation
import FinchKernels
import FinchModel

/// Settings of a causal-LM training run (pretraining or SFT). Property names are the camelCase
/// forms of the command-line flags, so `Recipe.decode(TrainerConfig.self)` fills it from flags + YAML.
public struct TrainerConfig: Codable, Equatable, Sendable {
    /// Run length: `maxSteps` optimizer steps when set, else `epochs` passes over the training split.
    public var epochs: Double = 1
    public var maxSteps: Int?
    /// Rows per micro-batch and tokens per row.
    public var batchSize: Int = 8
    public var seqLen: Int = 256
    /// Micro-batches per optimizer step (their gradients sum to the large batch's).
    public var gradAccum: Int = 1
    /// Peak learning rate, warmup steps, decay shape (`cosine`, `linear`, `constant`).
    public var lr: Double = 3e-4
    public var warmup: Int = 0
    public var schedule: String = "cosine"
    public var weightDecay: Double = 0.01
    /// Global-norm clipping threshold; 0 or negative = no clipping.
    public var maxGradNorm: Double = 1.0
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var adamEps: Double = 1e-8
    /// Training-only dropout probability on the attention and MLP sub-layer outputs (0 = off).
    public var dropout: Double = 0
    /// Evaluate every N optimizer steps (0 = once per epoch; negative = never).
    public var evalEvery: Int = 0
    /// Cap on evaluation micro-batches per evaluation (0 = the whole held-out split, streamed).
    public var evalBatches: Int = 0
    /// Evaluations without improvement before stopping (0 = never stop early).
    public var patience: Int = 0
    /// Periodic checkpoint interval in steps (0 = only at the end / on Ctrl-C) and how many to keep.
    public var checkpointEvery: Int = 0
    public var keepCheckpoints: Int = 2
    /// Write `best/` whenever the eval loss improves.
    public var saveBest: Bool = true
    public var seed: UInt64 = 0
    /// Plain progress line interval (logs) and metrics.jsonl interval, in steps.
    public var logEvery: Int = 10
    /// Layer-wise method settings (see `TrainableSet`).
    public var method: String = "full"
    public var trainLayers: Int = 0
    public var unfreezeEvery: Int = 0
    public var layerLrDecay: Double = 1
    public var cacheFeatures: Bool = false
    /// Fraction of replay (base-corpus) rows mixed into every micro-batch.
    public var replayRatio: Double = 0
    /// Matrix-product arithmetic: `fp32`; `bf16` (bf16 operands, fp32 sums; weights and optimizer stay fp32); or `auto`,
    /// bf16 where the CPU multiplies bf16 natively (AVX512-BF16) and fp32 elsewhere. The demo's quality table holds
    /// in bf16 (README, "bf16 by default"), and conformance passes at the stated bf16 tolerances.
    public var precision: String = "auto"

    /// The arithmetic `precision` gives on this CPU.
    public var gemmPrecision: GemmPrecision {
        switch precision {
        case "bf16": return .bf16
        case "auto": return Gemm.bf16Available ? .bf16 : .fp32
        default: return .fp32
        }
    }
    /// Keep only each layer's input and recompute the layer in the backward (less memory, ~⅓ more compute).
    public var gradientCheckpointing: Bool = false
    /// Data-parallel runs (`mpirun -np N finch …`): gradient all-reduce bucket size, and how long a rank waits for the
    /// others before it stops with an error (a rank died or hangs).
    public var allreduceBucketMb: Double = 4
    public var rankTimeout: Double = 300
    /// One process computing each step as N ranks would (same rows, same grouping of the gradient sum): the exact
    /// single-process reference for `mpirun -np N` (memory: N copies of the trainable gradients).
    public var simulateRanks: Int = 1
    /// Under mpirun: ZeRO-1, each rank keeps and updates only its share of the AdamW moments (the owners send the updated
    /// weights after each step). The same weights as without it; a no-op with one process.
    public var zero1: Bool = false

    public init() {}

    /// The AdamW settings these values give.
    public var adamW: AdamWSettings {
        AdamWSettings(beta1: beta1, beta2: beta2, eps: adamEps, weightDecay: weightDecay,
                      maxGradNorm: maxGradNorm > 0 ? maxGradNorm : nil)
    }

    /// Sets the decoder's arithmetic and memory trade-offs from these values.
    public func apply(to decoder: Decoder, loraDropout: Double) throws {
        decoder.precision = gemmPrecision
        if gradientCheckpointing && loraDropout > 0 {
            throw TrainingError("--gradient-checkpointing needs --lora-dropout 0: the recomputed forward would draw other dropout masks")
        }
        decoder.recomputeActivations = gradientCheckpointing
    }

    /// Checks ranges; errors name the option.
    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        try need(PEFTMethods.all.contains(method) || method == "pretrain",
                 "unknown --method '\(method)' (choose one of \(PEFTMethods.all.joined(separator: ", ")))")
        try need(batchSize >= 1, "--batch-size must be at least 1 (got \(batchSize))")
        try need(seqLen >= 2, "--seq-len must be at least 2 (got \(seqLen))")
        try need(gradAccum >= 1, "--grad-accum must be at least 1 (got \(gradAccum))")
        try need(lr > 0 && lr.isFinite, "--lr must be positive (got \(lr))")
        try need(warmup >= 0, "--warmup must be >= 0 (got \(warmup))")
        try need(LRSchedule.Kind(name: schedule) != nil, "--schedule must be cosine, linear or constant (got '\(schedule)')")
        try need(maxSteps.map { $0 >= 1 } ?? (epochs > 0), "--max-steps must be >= 1, or --epochs > 0")
        try need(layerLrDecay > 0 && layerLrDecay <= 1, "--layer-lr-decay must be in (0, 1] (got \(layerLrDecay))")
        try need(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1) (got \(dropout))")
        try need(replayRatio >= 0 && replayRatio < 1, "--replay-ratio must be in [0, 1) (got \(replayRatio))")
        try need(["auto", "fp32", "bf16"].contains(precision), "--precision must be auto, fp32 or bf16 (got '\(precision)')")
        try need(allreduceBucketMb > 0, "--allreduce-bucket-mb must be positive (got \(allreduceBucketMb))")
        try need(simulateRanks >= 1, "--simulate-ranks must be at least 1 (got \(simulateRanks))")
        try need(rankTimeout > 0, "--rank-timeout must be positive seconds (got \(rankTimeout))")
        try need(trainLayers >= 0, "--train-layers must be >= 0 (got \(trainLayers))")
        try need(unfreezeEvery >= 0, "--unfreeze-every must be >= 0 (got \(unfreezeEvery))")
        if let m = maxSteps {
            try need(warmup <= m, "--warmup \(warmup) is longer than --max-steps \(m): the learning rate would never reach --lr")
        }
        try need(!(cacheFeatures && method != "freeze"), "--cache-features works with --method freeze only (the trunk must be frozen to cache its output); got --method \(method)")
        try need(!(trainLayers > 0 && method != "freeze"), "--train-layers works with --method freeze only; got --method \(method)")
        // Gradual unfreezing unfreezes base blocks; a PEFT method keeps the base frozen by design.
        try need(!(unfreezeEvery > 0 && !["full", "freeze"].contains(method)),
                 "--unfreeze-every works with --method full or freeze (it unfreezes base blocks; --method \(method) keeps them frozen); --layer-lr-decay works with every method")
    }
}
