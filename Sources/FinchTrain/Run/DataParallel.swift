import Foundation
import FinchKernels
import FinchModel
import FinchDistributed

/// How the ranks of a data-parallel run shared an optimizer step; saved beside the data cursor (`ranks` in the
/// trainer state), so a resume knows the layout the cursor was written under.
public struct RankLayout: Codable, Equatable, Sendable {
    public var ranks: Int
    /// Micro-batches (or pair batches) each rank computes per optimizer step, and rows in each.
    public var microBatchesPerRank: Int
    public var rowsPerMicroBatch: Int
    /// Rows of the whole optimizer step: the data cursor advances by this much per step on every rank.
    public var rowsPerStep: Int { ranks * microBatchesPerRank * rowsPerMicroBatch }

    public init(ranks: Int, microBatchesPerRank: Int, rowsPerMicroBatch: Int) {
        self.ranks = ranks; self.microBatchesPerRank = microBatchesPerRank; self.rowsPerMicroBatch = rowsPerMicroBatch
    }

    public static let stateKey = "ranks"
}

/// A trainer's data-parallel side. Every rank holds the whole model and draws the same global stream of rows (the same
/// seeded shuffle); micro-batch `m` of a step's `ranks·k` belongs to rank `m / k`, which reads it, while the others
/// skip it. The ranks then sum the trainable gradients (bucketed, rank-ordered, started while the last backward still
/// runs) and take the same optimizer step. With one process every method here returns at once and changes nothing.
public final class DataParallel {
    public let communicator: Communicator
    public let bucketBytes: Int
    /// Start bucket sums during the last backward (only for methods whose layer gradients are final after their layer).
    public var overlap = true
    /// One process computing each step as this many ranks would (`--simulate-ranks`): the same rows per step and the
    /// same grouping of the gradient sum, the exact reference for `mpirun -np N`. 1 otherwise.
    public let simulatedRanks: Int
    private var reducer: GradientReducer?
    private var hookError: Error?

    public init(communicator: Communicator = World.current, bucketMB: Double = 4, timeout: Double = 300, simulatedRanks: Int = 1) {
        self.communicator = communicator
        self.simulatedRanks = communicator.isDistributed ? 1 : max(1, simulatedRanks)
        self.bucketBytes = max(4, Int(bucketMB * 1_048_576))
        if communicator.isDistributed { communicator.timeout = timeout }
    }

    /// Ranks sharing a step (real, or simulated in one process).
    public var ranks: Int { communicator.isDistributed ? communicator.size : simulatedRanks }
    public var rank: Int { communicator.rank }
    public var isDistributed: Bool { communicator.isDistributed }
    /// Whether this one process plays several ranks in turn.
    public var isSimulated: Bool { simulatedRanks > 1 }
    /// Rank 0 writes the run folder (metrics, checkpoints, final model) and reports progress.
    public var isWriter: Bool { communicator.isWriter }

    /// Whether micro-batch `m` of a step is this rank's, when each rank computes `perRank` of them.
    public func owns(microBatch m: Int, perRank: Int) -> Bool { isSimulated || m / perRank == rank }

    /// Simulated ranks: runs `rankStep(r)` for each rank with the gradients zeroed, as that rank would compute them,
    /// and leaves in `gradients` their sum grouped as MPI groups it; returns the ranks' values of `rankStep` summed in
    /// the same grouping.
    public func simulate(_ gradients: [String: Tensor], zero: () -> Void, rankStep: (Int) throws -> Double) rethrows -> Double {
        try simulate(gradients, zero: zero) { [try rankStep($0)] }[0]
    }

    /// The same for several values per rank.
    public func simulate(_ gradients: [String: Tensor], zero: () -> Void, rankStep: (Int) throws -> [Double]) rethrows -> [Double] {
        let names = gradients.keys.sorted()
        var parts: [[Tensor]] = []
        var values: [[Double]] = []
        for r in 0..<simulatedRanks {
            zero()
            values.append(try rankStep(r))
            parts.append(names.map { gradients[$0]!.copy() })
        }
        for (i, name) in names.enumerated() {
            RankOrderedSum.fold(parts.map { $0[i].buffer })
            gradients[name]!.copy(from: parts[0][i])
        }
        return (0..<(values.first?.count ?? 0)).map { i in RankOrderedSum.fold(values.map { $0[i] }) }
    }

    /// Exact integer sums over ranks (token and pair counts).
    public func sum(_ values: [Int], what: String) throws -> [Int] {
        guard isDistributed else { return values }
        var v = values.map { Int64($0) }
        try communicator.sum(&v, what: what)
        return v.map { Int($0) }
    }

    /// Rank-ordered sums of doubles (summed losses).
    public func sum(_ values: [Double], what: String) throws -> [Double] {
        guard isDistributed else { return values }
        var v = values
        try communicator.sum(&v, what: what)
        return v
    }

    /// A reward / DPO step's pairs: the global batch of `ranks × batchSize` indices (rebuilt from the step, as one
    /// process with batch `ranks × batchSize` draws it) and this rank's run of `batchSize` of them.
    public func pairBatch(step: Int, count: Int, batchSize: Int, seed: UInt64, rank: Int) throws -> [Int] {
        guard count >= batchSize * ranks else {
            throw TrainingError("\(count) training pairs are fewer than \(ranks) ranks × --batch-size \(batchSize): use fewer ranks or a smaller batch")
        }
        let all = RLHFSetup.batchIndices(step: step, count: count, batchSize: batchSize * ranks, seed: seed)
        return Array(all[(rank * batchSize)..<((rank + 1) * batchSize)])
    }

    /// Turns this rank's per-pair mean gradients into its share of the global mean (×1/ranks: every rank has the same
    /// number of pairs); with one process it leaves them as they are.
    public func shareOfMean(_ gradients: inout [Float]) {
        guard ranks > 1 else { return }
        let s = 1 / Float(ranks)
        for i in gradients.indices { gradients[i] *= s }
    }

    /// Global means of per-pair metrics that each rank computed over its own equal share (simulated ranks: their
    /// values already summed by `simulate`).
    public func mean(_ metrics: [Double], what: String) throws -> [Double] {
        guard ranks > 1 else { return metrics }
        return try sum(metrics, what: what).map { $0 / Double(ranks) }
    }

    /// This rank's contiguous share of `count` items (rows, prompt groups): rank r of N gets [r·count/N, (r+1)·count/N).
    /// Everything with one process.
    public func share(_ count: Int) -> Range<Int> {
        guard isDistributed else { return 0..<count }
        let n = communicator.size, r = communicator.rank
        return (r * count / n)..<((r + 1) * count / n)
    }

    /// Every rank's values concatenated in rank order (each rank gives its `share`); the values as they are with one
    /// process. RL rollouts travel this way: each rank samples and scores its share, then all hold the whole batch.
    public func gather<T: BitwiseCopyable>(_ values: [T], what: String) throws -> [T] {
        guard isDistributed else { return values }
        let all = try gatherBytes(values.withUnsafeBytes { Array($0) }, what: what)
        let stride = MemoryLayout<T>.stride
        return all.flatMap { bytes in
            bytes.withUnsafeBytes { raw in (0..<(raw.count / stride)).map { raw.loadUnaligned(fromByteOffset: $0 * stride, as: T.self) } }
        }
    }

    /// Each rank's bytes, of any length: the lengths first, then every rank's bytes padded to the longest (the
    /// communicator's all-gather moves equal sizes).
    func gatherBytes(_ bytes: [UInt8], what: String) throws -> [[UInt8]] {
        let counts = try communicator.allGather(withUnsafeBytes(of: Int64(bytes.count).littleEndian) { Array($0) }, what: what)
            .map { b in Int(Int64(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })) }
        let width = counts.max() ?? 0
        guard width > 0 else { return counts.map { _ in [] } }
        let all = try communicator.allGather(bytes + [UInt8](repeating: 0, count: width - bytes.count), what: what)
        return zip(all, counts).map { Array($0.0.prefix($0.1)) }
    }

    /// Variable-length lists (sampled token sequences) gathered in rank order.
    public func gather(lists: [[Int]], what: String) throws -> [[Int]] {
        guard isDistributed else { return lists }
        let lengths = try gather(lists.map { Int32($0.count) }, what: what)
        let flat = try gather(lists.flatMap { $0.map(Int32.init) }, what: what)
        var out: [[Int]] = [], at = 0
        for n in lengths { out.append(flat[at..<(at + Int(n))].map(Int.init)); at += Int(n) }
        return out
    }

    /// ZeRO-1 (`--zero1`): shards `optimizer`'s moments over the ranks and lets `session` bring them together for its
    /// checkpoints; returns a line saying what this rank holds. Nothing with one process.
    public func shard(_ optimizer: AdamWOptimizer, session: TrainingSession) -> String? {
        guard isDistributed else { return nil }
        let full = optimizer.momentBytes
        optimizer.shard(rank: rank, ranks: communicator.size)
        session.fetchOptimizerState = { [unowned self, unowned optimizer] keep in
            try optimizer.fetchForeignMoments(keep: keep) { t, root in
                try self.communicator.broadcast(UnsafeMutableRawBufferPointer(t.buffer), root: root, what: "gathering the optimizer state (ZeRO-1)")
            }
        }
        return String(format: "ZeRO-1: each rank keeps the AdamW moments of its share of the parameters (rank 0: %.1f of %.1f MB)",
                      Double(optimizer.momentBytes) / 1e6, Double(full) / 1e6)
    }

    /// After a ZeRO-1 step: each parameter's owner sends its new values to the other ranks (in name order).
    public func shareUpdatedParameters(_ optimizer: AdamWOptimizer, _ parameters: [String: Tensor]) throws {
        guard isDistributed, optimizer.shard != nil else { return }
        for name in optimizer.parameterNames.sorted() {
            guard let t = parameters[name] else { continue }
            try communicator.broadcast(UnsafeMutableRawBufferPointer(t.buffer), root: optimizer.owner(of: name), what: "sharing the updated weights (ZeRO-1)")
        }
    }

    /// A stop request (Ctrl-C) that reached any rank stops all of them after the same step.
    public func anyStop(_ local: Bool) throws -> Bool {
        guard isDistributed else { return local }
        return try communicator.any(local, what: "agreeing whether to stop")
    }

    /// The reducer for these gradient tensors (rebuilt when the trainable set changed, e.g. gradual unfreezing).
    func reducer(for gradients: [String: Tensor]) -> GradientReducer {
        if let r = reducer, r.holds(gradients) { return r }
        let r = GradientReducer(communicator: communicator, gradients: gradients, layer: GradientReducer.layerIndex(of:),
                                bucketBytes: bucketBytes)
        reducer = r
        return r
    }

    /// The hook to set as `Decoder.afterLayerBackward` during a step's last backward (nil with one process, or
    /// without overlap): it starts the buckets whose layers are done.
    public func layerHook(for gradients: [String: Tensor]) -> ((Int) -> Void)? {
        guard isDistributed, overlap else { return nil }
        let r = reducer(for: gradients)
        return { [weak self] layer in
            guard let self, self.hookError == nil else { return }
            do { try r.layerDone(layer) } catch { self.hookError = error }
        }
    }

    /// Sums `gradients` over the ranks in place (finishing what the layer hook started).
    public func allReduce(_ gradients: [String: Tensor]) throws {
        guard isDistributed else { return }
        if let e = hookError { hookError = nil; throw e }
        try reducer(for: gradients).finish()
    }

    /// Trainable bytes one rank sends per step.
    public func gradientBytes(_ gradients: [String: Tensor]) -> Int { gradients.values.reduce(0) { $0 + 4 * $1.count } }

    /// Records the layout in the trainer state; on a resume written under another layout, says what changed.
    public func record(_ layout: RankLayout, in state: inout TrainingState) throws -> String? {
        var note: String? = nil
        if let saved = try state.extras[RankLayout.stateKey]?.decode(RankLayout.self), saved != layout {
            note = "resuming a run of \(saved.ranks) rank(s) × \(saved.microBatchesPerRank)×\(saved.rowsPerMicroBatch) rows on \(layout.ranks) rank(s) × \(layout.microBatchesPerRank)×\(layout.rowsPerMicroBatch): the data continues at the saved cursor; rows per step \(saved.rowsPerStep) → \(layout.rowsPerStep)"
        }
        state.extras[RankLayout.stateKey] = try JSONValue(encoding: layout)
        return note
    }

    /// Checks that every rank holds the same trainable weights (they must, step after step); an error names the
    /// first rank that differs. Cheap: one 64-bit hash per rank.
    public func checkReplicas(_ parameters: [String: Tensor], step: Int) throws {
        guard isDistributed else { return }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for name in parameters.keys.sorted() {
            let t = parameters[name]!
            for i in 0..<t.count { h = (h ^ UInt64(t.ptr[i].bitPattern)) &* 0x100_0000_01b3 }
        }
        let bytes = withUnsafeBytes(of: h.littleEndian) { Array($0) }
        let all = try communicator.allGather(bytes, what: "comparing replica weights")
        if let bad = all.firstIndex(where: { $0 != all[0] }) {
            throw DistributedError.mismatch("step \(step): rank \(bad)'s trainable weights differ from rank 0's: the replicas diverged (different data, binaries or thread counts on the nodes?)")
        }
    }
}
