import Foundation
import FinchKernels
import FinchModel

/// A set of trainable parameters sharing optimizer settings: discriminative learning rates give each
/// block its own `lrMultiplier`; norms and biases usually get `weightDecay: false`.
public struct ParameterGroup: Codable, Equatable, Sendable {
    /// A label for logs and error messages (e.g. `"layers.11"`, `"head"`, `"lora"`).
    public var label: String
    /// Parameter names (HF names or adapter keys) in this group.
    public var names: [String]
    /// The group's learning rate is `lr · lrMultiplier`.
    public var lrMultiplier: Double
    /// Whether decoupled weight decay applies to this group.
    public var weightDecay: Bool

    public init(label: String, names: [String], lrMultiplier: Double = 1, weightDecay: Bool = true) {
        self.label = label
        self.names = names
        self.lrMultiplier = lrMultiplier
        self.weightDecay = weightDecay
    }
}

/// AdamW hyper-parameters (torch defaults except weight decay, which the caller sets).
public struct AdamWSettings: Codable, Equatable, Sendable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    /// Decoupled weight decay for groups with `weightDecay == true`.
    public var weightDecay: Double
    /// Global-norm gradient clipping threshold (`nil` = no clipping; the norm is still measured).
    public var maxGradNorm: Double?

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01,
                maxGradNorm: Double? = 1.0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.maxGradNorm = maxGradNorm
    }
}

/// torch.optim.AdamW over named parameter groups, with global-norm clipping and a state that is saved
/// to / loaded from a checkpoint folder (`optimizer.safetensors` + `optimizer.json`).
///
/// Per parameter, step t (its own count, so parameters unfrozen later start their bias correction at 1):
/// `p ← p·(1 − lr_g·wd)`; `m ← m + (1−β1)(g − m)`; `v ← β2·v + (1−β2)g²`;
/// `p ← p − (lr_g / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)`.
/// Only trainable parameters get state (frozen weights have no m/v). The per-element work is
/// FinchKernels' fused `AdamW.step` and `Clip.globalNorm`.
public final class AdamWOptimizer {
    public let settings: AdamWSettings
    public private(set) var groups: [ParameterGroup]
    /// Optimizer steps taken (the schedule position to resume from).
    public private(set) var stepCount: Int = 0

    final class Slot {
        let param: Tensor
        /// The moments; empty (no elements) for a parameter another rank owns under ZeRO-1.
        var m: Tensor
        var v: Tensor
        var step = 0
        init(_ p: Tensor, moments: Bool = true) {
            param = p
            m = Tensor(shape: moments ? p.shape : [0]); v = Tensor(shape: moments ? p.shape : [0])
        }
        var hasMoments: Bool { m.count == param.count }
    }
    private var slots: [String: Slot] = [:]

    /// ZeRO-1 (`--zero1` under mpirun): which rank owns each parameter's moments and update. This rank allocates and
    /// updates only its own; after each step the owners send the new values (`DataParallel.shareUpdatedParameters`).
    /// Owners are given greedily, in parameter order, to the rank holding the fewest elements (a parameter unfrozen
    /// later joins the same way), so every rank computes the same assignment. nil: one process holds everything.
    public private(set) var shard: (rank: Int, ranks: Int, owner: [String: Int])?

    /// Shards the optimizer state over `ranks`: the moments of parameters other ranks own are released.
    public func shard(rank: Int, ranks: Int) {
        shard = (rank, ranks, [:])
        assignOwners()
        for (name, slot) in slots where !owns(name) { slot.m = Tensor(shape: [0]); slot.v = Tensor(shape: [0]) }
    }

    /// Whether this rank updates `name` (always without sharding).
    public func owns(_ name: String) -> Bool { shard.map { $0.owner[name] == $0.rank } ?? true }

    /// The rank that owns `name` (0 without sharding).
    public func owner(of name: String) -> Int { shard?.owner[name] ?? 0 }

    private func assignOwners() {
        guard var s = shard else { return }
        var load = [Int](repeating: 0, count: s.ranks)
        for (name, r) in s.owner { load[r] += slots[name]?.param.count ?? 0 }
        for name in parameterNames where s.owner[name] == nil {
            let r = load.indices.min { load[$0] < load[$1] || (load[$0] == load[$1] && $0 < $1) }!
            s.owner[name] = r
            load[r] += slots[name]!.param.count
        }
        shard = s
    }

    /// Bytes of AdamW moments this rank holds.
    public var momentBytes: Int { slots.values.reduce(0) { $0 + 4 * ($1.m.count + $1.v.count) } }

    /// Under ZeRO-1, makes every moment present on this rank for a checkpoint: for each parameter another rank owns
    /// (in name order, on every rank alike), `broadcast(tensor, owner)` sends the owner's moments to all. With `keep`
    /// (the rank that writes the checkpoint) they stay until `releaseForeignMoments`; the other ranks drop them at once.
    public func fetchForeignMoments(keep: Bool, broadcast: (Tensor, Int) throws -> Void) throws {
        guard let s = shard else { return }
        // One pass in name order on every rank: the owner sends, the others receive (a collective per tensor).
        for name in parameterNames.sorted() {
            let slot = slots[name]!, root = s.owner[name]!
            if root == s.rank {
                try broadcast(slot.m, root); try broadcast(slot.v, root)
                continue
            }
            let m = Tensor(shape: slot.param.shape), v = Tensor(shape: slot.param.shape)
            try broadcast(m, root); try broadcast(v, root)
            if keep { slot.m = m; slot.v = v }
        }
    }

    /// Drops the moments `fetchForeignMoments` brought (ZeRO-1 only).
    public func releaseForeignMoments() {
        guard shard != nil else { return }
        for (name, slot) in slots where !owns(name) { slot.m = Tensor(shape: [0]); slot.v = Tensor(shape: [0]) }
    }

    /// What one `step` measured.
    public struct StepReport: Equatable {
        /// Global L2 norm of the gradients before clipping.
        public var gradNorm: Double
        /// The factor the gradients were multiplied by (1 when not clipped).
        public var clipCoefficient: Double
    }

    /// - Parameters:
    ///   - parameters: every tensor a group may name (other entries are ignored).
    ///   - groups: disjoint groups; a name may appear in one group only.
    public init(parameters: [String: Tensor], groups: [ParameterGroup], settings: AdamWSettings) throws {
        self.settings = settings
        self.groups = []
        for g in groups { try addGroup(g, parameters: parameters) }
    }

    /// Adds a group with fresh state (gradual unfreezing adds one block at a time).
    public func addGroup(_ group: ParameterGroup, parameters: [String: Tensor]) throws {
        for name in group.names {
            if slots[name] != nil { throw TrainingError("optimizer: parameter '\(name)' of group '\(group.label)' is already in another group") }
            guard parameters[name] != nil else { throw TrainingError("optimizer: group '\(group.label)' names unknown parameter '\(name)'") }
        }
        groups.append(group)
        for name in group.names { slots[name] = Slot(parameters[name]!) }
        if shard != nil {
            assignOwners()
            for name in group.names where !owns(name) { slots[name] = Slot(parameters[name]!, moments: false) }
        }
    }

    /// Names of every trainable parameter, in group order.
    public var parameterNames: [String] { groups.flatMap(\.names) }

    /// Number of trainable scalars.
    public var parameterCount: Int { slots.values.reduce(0) { $0 + $1.param.count } }

    /// The first and second moment and the step count of one parameter (for tests and inspection).
    public func state(of name: String) -> (m: Tensor, v: Tensor, step: Int)? {
        slots[name].map { ($0.m, $0.v, $0.step) }
    }

    // MARK: - Step

    /// Clips the gradients (if `maxGradNorm` is set) and applies one AdamW update at base rate `lr`.
    /// `gradients` must hold exactly the trainable parameters. A non-finite gradient norm throws before
    /// anything is changed, so a NaN never reaches the weights or a checkpoint.
    @discardableResult
    public func step(gradients: [String: Tensor], lr: Double) throws -> StepReport {
        let names = parameterNames
        var grads: [Tensor] = []
        grads.reserveCapacity(names.count)
        for name in names {
            guard let g = gradients[name] else { throw TrainingError("optimizer: no gradient for trainable parameter '\(name)'") }
            guard g.count == slots[name]!.param.count else {
                throw TrainingError("optimizer: gradient of '\(name)' has shape \(g.shape), parameter has \(slots[name]!.param.shape)")
            }
            grads.append(g)
        }
        if gradients.count != names.count, let extra = gradients.keys.sorted().first(where: { slots[$0] == nil }) {
            throw TrainingError("optimizer: gradient given for '\(extra)', which is not trainable")
        }
        let norm = Self.globalNorm(grads)
        guard norm.isFinite else {
            throw TrainingError("step \(stepCount + 1): the gradient norm is \(norm.isNaN ? "NaN" : "infinite") — stopping before the update; the weights and the last checkpoint are untouched (lower --lr, or check the data)")
        }
        var coef = 1.0
        if let maxNorm = settings.maxGradNorm {
            coef = Clip.coefficient(norm: norm, maxNorm: maxNorm)
            Self.scale(grads, by: Float(coef))   // torch scales even by 1.0; a no-op here
        }
        var i = 0
        for group in groups {
            let lrG = lr * group.lrMultiplier
            let wd = group.weightDecay ? settings.weightDecay : 0
            for name in group.names {
                let slot = slots[name]!
                slot.step += 1
                if slot.hasMoments && owns(name) { update(slot, grad: grads[i], lr: lrG, weightDecay: wd) }
                i += 1
            }
        }
        stepCount += 1
        return StepReport(gradNorm: norm, clipCoefficient: coef)
    }

    /// One parameter's update through the fused kernel (float32 per element, bias corrections in Double).
    private func update(_ s: Slot, grad: Tensor, lr: Double, weightDecay: Double) {
        let hyper = AdamW.Hyper(lr: Float(lr), beta1: Float(settings.beta1), beta2: Float(settings.beta2),
                                eps: Float(settings.eps), weightDecay: Float(weightDecay))
        AdamW.step(param: s.param, grad: grad, m: s.m, v: s.v, hyper: hyper, step: s.step)
    }

    // MARK: - Clipping

    /// Global L2 norm over all tensors (FinchKernels `Clip.globalNorm`, accumulated in Double).
    public static func globalNorm(_ tensors: [Tensor]) -> Double {
        Clip.globalNorm(tensors.map { UnsafeBufferPointer($0.buffer) })
    }

    /// torch `clip_grad_norm_`: `coef = min(maxNorm / (norm + 1e-6), 1)`, every gradient scaled by it.
    @discardableResult
    public static func clipGradients(_ tensors: [Tensor], maxNorm: Double) -> (totalNorm: Double, coefficient: Double) {
        let norm = globalNorm(tensors)
        let coef = Clip.coefficient(norm: norm, maxNorm: maxNorm)
        scale(tensors, by: Float(coef))
        return (norm, coef)
    }

    static func scale(_ tensors: [Tensor], by c: Float) {
        guard c != 1 else { return }
        for t in tensors {
            let p = t.ptr
            ThreadPool.shared.parallelFor(t.count, minChunk: 1 << 15) { _, range in
                for j in range { p[j] *= c }
            }
        }
    }

    // MARK: - State on disk

    struct StateFile: Codable {
        var format = "finch-adamw"
        var version = 1
        var stepCount: Int
        var settings: AdamWSettings
        var groups: [ParameterGroup]
        var steps: [String: Int]
    }

    /// Writes `optimizer.safetensors` (`exp_avg.<name>`, `exp_avg_sq.<name>`) and `optimizer.json`
    /// (step counts, settings, groups) into `folder`, each atomically.
    public func saveState(to folder: URL) throws {
        var tensors: [String: Tensor] = [:]
        var steps: [String: Int] = [:]
        for (name, s) in slots {
            tensors["exp_avg.\(name)"] = s.m
            tensors["exp_avg_sq.\(name)"] = s.v
            steps[name] = s.step
        }
        try SafeTensors.write(tensors, to: folder.appendingPathComponent("optimizer.safetensors"))
        let file = StateFile(stepCount: stepCount, settings: settings, groups: groups, steps: steps)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(file), to: folder.appendingPathComponent("optimizer.json"))
    }

    /// Restores groups, step counts and moments saved by `saveState`, binding each name to the tensor
    /// of that name in `parameters`. Settings are not restored: the optimizer keeps its own (a resumed run
    /// may change, say, weight decay on purpose). Throws, naming the file and tensor, on any mismatch;
    /// nothing is changed then.
    public func loadState(from folder: URL, parameters: [String: Tensor]) throws {
        let jsonURL = folder.appendingPathComponent("optimizer.json")
        let stURL = folder.appendingPathComponent("optimizer.safetensors")
        guard let data = try? Data(contentsOf: jsonURL) else { throw TrainingError("cannot read \(jsonURL.path)") }
        let file: StateFile
        do { file = try JSONDecoder().decode(StateFile.self, from: data) } catch {
            throw TrainingError("\(jsonURL.path): not a Finch optimizer state (\(error))")
        }
        let st = try SafeTensors.File(url: stURL)
        var newSlots: [String: Slot] = [:]
        for g in file.groups {
            for name in g.names {
                guard let p = parameters[name] else {
                    throw TrainingError("\(jsonURL.path): group '\(g.label)' names parameter '\(name)', which the model does not have")
                }
                guard newSlots[name] == nil else { throw TrainingError("\(jsonURL.path): parameter '\(name)' is in two groups") }
                let slot = Slot(p)
                for (key, dst) in [("exp_avg.\(name)", slot.m), ("exp_avg_sq.\(name)", slot.v)] {
                    let t = try st.tensor(key)
                    guard t.shape == p.shape else {
                        throw TrainingError("\(stURL.path): '\(key)' has shape \(t.shape), parameter '\(name)' has \(p.shape)")
                    }
                    dst.copy(from: t)
                }
                guard let s = file.steps[name] else { throw TrainingError("\(jsonURL.path): no step count for '\(name)'") }
                slot.step = s
                newSlots[name] = slot
            }
        }
        slots = newSlots
        groups = file.groups
        stepCount = file.stepCount
        if let s = shard { shard = (s.rank, s.ranks, [:]); assignOwners(); releaseForeignMoments() }
    }
}
