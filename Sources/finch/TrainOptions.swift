import ArgumentParser
import FinchKernels
import FinchTrain
import Foundation

/// Training-loop flags shared by `finch pretrain` and `finch sft`. Every option is optional so that only
/// flags the user typed override the YAML recipe (`--config`), which overrides the defaults.
struct TrainOptions: ParsableArguments {
    @Option(help: "Passes over the training split (ignored with --max-steps).") var epochs: Double?
    @Option(help: "Optimizer steps of the run.") var maxSteps: Int?
    @Option(help: "Rows per micro-batch.") var batchSize: Int?
    @Option(help: "Tokens per row (sequences are cut / padded to it).") var seqLen: Int?
    @Option(help: "Peak learning rate.") var lr: Double?
    @Option(help: "Linear warmup steps.") var warmup: Int?
    @Option(help: "Decay after warmup: cosine, linear or constant.") var schedule: String?
    @Option(help: "Micro-batches per optimizer step (gradients equal the large batch's).") var gradAccum: Int?
    @Option(help: "AdamW weight decay (not on norms and biases).") var weightDecay: Double?
    @Option(help: "Global gradient-norm clip (0 = off).") var maxGradNorm: Double?
    @Option(help: "Dropout probability on attention / MLP outputs during training (0 = off).") var dropout: Double?
    @Option(help: "Evaluate every N steps (0 = every epoch, -1 = never).") var evalEvery: Int?
    @Option(help: "At most N micro-batches per evaluation (0 = the whole held-out split).") var evalBatches: Int?
    @Option(help: "Stop after N evaluations without improvement (0 = never).") var patience: Int?
    @Option(help: "Periodic checkpoint every N steps (0 = only at the end / on Ctrl-C).") var checkpointEvery: Int?
    @Option(help: "Periodic checkpoints kept.") var keepCheckpoints: Int?
    @Option(help: "Random seed (init, shuffle, replay mixing, dropout).") var seed: UInt64?
    @Option(help: "Progress line interval in logs (steps).") var logEvery: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
    @Flag(help: "Replace what an earlier run left in the run folder.") var overwrite = false
    @Option(name: .customLong("config"), help: "YAML recipe: same keys as the flags (flags win).") var recipe: String?

    /// The typed flags as recipe keys.
    var flags: [String: Any] {
        var f: [String: Any] = [:]
        func put(_ k: String, _ v: Any?) { if let v { f[k] = v } }
        put("epochs", epochs); put("max-steps", maxSteps); put("batch-size", batchSize); put("seq-len", seqLen)
        put("lr", lr); put("warmup", warmup); put("schedule", schedule); put("grad-accum", gradAccum)
        put("weight-decay", weightDecay); put("max-grad-norm", maxGradNorm); put("dropout", dropout); put("eval-every", evalEvery)
        put("eval-batches", evalBatches); put("patience", patience); put("checkpoint-every", checkpointEvery)
        put("keep-checkpoints", keepCheckpoints); put("seed", seed.map { Int(truncatingIfNeeded: $0) }); put("log-every", logEvery)
        put("threads", threads)
        if resume { f["resume"] = true }
        return f
    }
}

extension Encodable {
    /// This value's fields as recipe keys (kebab-case) with native values, for `Recipe(defaults:)`
    /// (unset optionals are left out).
    func recipeDefaults() throws -> [String: Any] {
        var out: [String: Any] = [:]
        for child in Mirror(reflecting: self).children {
            guard let label = child.label else { continue }
            var value: Any = child.value
            let m = Mirror(reflecting: value)
            if m.displayStyle == .optional {
                guard let inner = m.children.first?.value else { continue }
                value = inner
            }
            if let u = value as? UInt64 { value = Int(truncatingIfNeeded: u) }
            if let r = value as? any RawRepresentable, let raw = r.rawValue as? String { value = raw }   // enums as their names
            var kebab = ""
            for ch in label { if ch.isUppercase { kebab += "-" + ch.lowercased() } else { kebab.append(ch) } }
            out[kebab] = value
        }
        return out
    }
}

/// Builds the resolved recipe: defaults of every configuration type, the YAML recipe, then flags.
/// `optionalKeys` are keys whose default is unset (nil) but that a recipe may give.
func resolveRecipe(defaults: [[String: Any]], optionalKeys: [String], recipe: String?, flags: [String: Any]) throws -> Recipe {
    var merged: [String: Any] = [:]
    for d in defaults { merged.merge(d) { a, _ in a } }
    merged["threads"] = merged["threads"] ?? 0
    merged["resume"] = merged["resume"] ?? false
    return try Recipe(defaults: merged, recipe: recipe.map { URL(fileURLWithPath: $0) }, flags: flags, knownKeys: Set(merged.keys).union(optionalKeys))
}

/// Applies `threads` from the recipe.
func applyThreads(_ recipe: Recipe) throws {
    if let n = try recipe.int("threads"), n > 0 { ThreadPool.shared.setThreads(n) }
}
