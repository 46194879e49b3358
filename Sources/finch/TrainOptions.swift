import ArgumentParser
import FinchCLI
import FinchKernels
import FinchTrain
import FinchDistributed
import Foundation

/// The training-loop flags of `finch pretrain` and `finch sft`, named as `TrainerConfig`'s properties (see
/// `FlagBinding`). Every one is optional: a flag the user typed overrides the YAML recipe, which overrides the
/// defaults (shown here from the library's own).
struct TrainOptions: ParsableArguments {
    static let d = TrainerConfig()
    @Option(help: "Passes over the training split (ignored with --max-steps; default \(d.epochs)).") var epochs: Double?
    @Option(help: "Optimizer steps of the run.") var maxSteps: Int?
    @Option(help: "Rows per micro-batch (default \(d.batchSize)).") var batchSize: Int?
    @Option(help: "Tokens per row: sequences are cut / padded to it (default \(d.seqLen)).") var seqLen: Int?
    @Option(help: "Peak learning rate (default \(d.lr)).") var lr: Double?
    @Option(help: "Linear warmup steps (default \(d.warmup)).") var warmup: Int?
    @Option(help: "Decay after warmup: cosine, linear or constant (default \(d.schedule)).") var schedule: String?
    @Option(help: "Micro-batches per optimizer step: gradients equal the large batch's (default \(d.gradAccum)).") var gradAccum: Int?
    @Option(help: "AdamW weight decay, not on norms and biases (default \(d.weightDecay)).") var weightDecay: Double?
    @Option(help: "Global gradient-norm clip, 0 = off (default \(d.maxGradNorm)).") var maxGradNorm: Double?
    @Option(help: "Dropout probability on attention / MLP outputs during training (default \(d.dropout) = off).") var dropout: Double?
    @Option(help: "Matrix products: fp32, bf16 (bf16 operands, fp32 sums; master weights and optimizer stay fp32), or auto = bf16 where the CPU has AVX512-BF16 (default \(d.precision)).")
    var precision: String?
    @Flag(help: "Gradient checkpointing: recompute each layer in the backward instead of keeping its activations.")
    var gradientCheckpointing = false
    @Option(help: "Evaluate every N steps (0 = every epoch, -1 = never; default \(d.evalEvery)).") var evalEvery: Int?
    @Option(help: "At most N micro-batches per evaluation (0 = the whole held-out split).") var evalBatches: Int?
    @Option(help: "Stop after N evaluations without improvement (0 = never).") var patience: Int?
    @Option(help: "Periodic checkpoint every N steps (0 = only at the end / on Ctrl-C).") var checkpointEvery: Int?
    @Option(help: "Periodic checkpoints kept (default \(d.keepCheckpoints)).") var keepCheckpoints: Int?
    @Option(help: "Random seed: init, shuffle, replay mixing, dropout (default \(d.seed)).") var seed: UInt64?
    @Option(help: "Progress line interval in logs, in steps (default \(d.logEvery)).") var logEvery: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Under mpirun: gradient all-reduce bucket size in MiB (default \(d.allreduceBucketMb)).") var allreduceBucketMb: Double?
    @Option(help: "Compute each step as N data-parallel ranks would, in this one process: the exact reference for mpirun -np N.") var simulateRanks: Int?
    @Option(help: "Under mpirun: seconds a rank waits for the others before stopping with an error (default \(d.rankTimeout)).") var rankTimeout: Double?
    @Flag(help: "Under mpirun: ZeRO-1, each rank keeps only its share of the AdamW state.") var zero1 = false
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
}

/// The terminal side of a training command: progress lines (in place on a terminal, plain in a log) and Ctrl-C as a
/// stop request; `threads` applied.
func trainingProgress(logEvery: Int, threads: Int) -> TerminalProgress {
    if threads > 0 { ThreadPool.shared.setThreads(threads) }
    // Under mpirun only rank 0 reports and turns Ctrl-C / SIGTERM into a stop request (shared with the others at the
    // next step); the others train silently, and a signal ends them at once (mpirun's way of ending a failed job).
    if !World.current.isWriter { return TerminalProgress(every: logEvery, catchCtrlC: false, write: { _ in }, report: { _ in }) }
    return TerminalProgress(every: logEvery, catchCtrlC: true)
}
