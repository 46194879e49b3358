/// The grouping in which the ranks' values are summed, computed in one process: the reference a single process uses to
/// reproduce an N-rank step bit for bit (`--simulate-ranks N`).
///
/// MPI sums with the non-commutative operation of shim.h keep rank order; Open MPI combines them along a binomial tree,
/// neighbours first: ((x0 + x1) + (x2 + x3)) + … (for 2 and 3 ranks that is simply x0 + x1 + x2, left to right).
/// `Tests/FinchTrainTests/DataParallelTests` checks that mpirun's results and this fold agree.
public enum RankOrderedSum {
    /// Sums `parts` into `parts[0]` (all of one length).
    public static func fold(_ parts: [UnsafeMutableBufferPointer<Float>]) {
        var d = 1
        while d < parts.count {
            for i in stride(from: 0, to: parts.count, by: 2 * d) where i + d < parts.count {
                let a = parts[i], b = parts[i + d]
                precondition(a.count == b.count, "RankOrderedSum: parts of different lengths")
                for j in 0..<a.count { a[j] = a[j] + b[j] }
            }
            d *= 2
        }
    }

    /// The same grouping for doubles.
    public static func fold(_ values: [Double]) -> Double {
        var v = values
        var d = 1
        while d < v.count {
            for i in stride(from: 0, to: v.count, by: 2 * d) where i + d < v.count { v[i] = v[i] + v[i + d] }
            d *= 2
        }
        return v.first ?? 0
    }
}
