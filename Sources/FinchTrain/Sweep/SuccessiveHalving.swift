import Foundation

/// Asynchronous successive halving (ASHA, Li et al. 2020), in its stopping form (Ray Tune's AsyncHyperBand): a
/// trial reaching rung k (its first evaluation at or after `grace · ηᵏ` steps) goes on only if its evaluation is
/// among the best 1/η of all evaluations recorded at that rung so far; otherwise it stops there. No trial waits
/// for another, so as many run at once as the cores allow, and a poor trial costs `grace` steps, not a whole run.
public struct SuccessiveHalving: Equatable, Codable, Sendable {
    /// Reduction factor: about 1/η of the trials pass each rung.
    public var eta: Double
    /// Steps before the first rung.
    public var graceSteps: Int

    public init(eta: Double = 3, graceSteps: Int) { self.eta = eta; self.graceSteps = graceSteps }

    /// The rung milestones (in steps) of a trial that runs `maxSteps`: the last step is the trial's end, not a rung.
    public func milestones(maxSteps: Int) -> [Int] {
        guard graceSteps > 0, eta > 1 else { return [] }
        var out: [Int] = [], m = Double(graceSteps)
        while Int(m.rounded()) < maxSteps { out.append(Int(m.rounded())); m *= eta }
        return out
    }

    /// Whether a trial whose value at a rung is `value` (lower is better) continues, given every value recorded at
    /// that rung, its own included: it must be at or below the 1/η quantile (linear interpolation).
    public func continues(_ value: Double, recorded: [Double]) -> Bool {
        let v = recorded.sorted()
        guard v.count > 1 else { return true }
        let pos = (1 / eta) * Double(v.count - 1)
        let i = Int(pos.rounded(.down)), f = pos - Double(i)
        let cutoff = i + 1 < v.count ? v[i] + f * (v[i + 1] - v[i]) : v[i]
        return value <= cutoff
    }
}
