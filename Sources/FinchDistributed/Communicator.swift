import Foundation

/// The group of processes that train one model together (MPI's world), as Finch uses it: every rank holds the whole
/// model, computes the gradients of its own slice of the batch, and sums them with the others.
///
/// Every collective must be called by all ranks in the same order. Sums of floating-point values combine the ranks in
/// rank order (`x0 + x1 + … + x(n-1)`), so a run with the same number of ranks rounds the same way every time. Each
/// wait gives up after `timeout` seconds with `DistributedError.timeout`, so a rank that died or hangs stops the
/// others with an error instead of a hang.
public protocol Communicator: AnyObject {
    /// This process's index, 0..<size; rank 0 writes the run folder.
    var rank: Int { get }
    var size: Int { get }
    /// Seconds a collective may wait for the other ranks.
    var timeout: Double { get set }
    /// Starts an in-place, rank-ordered sum of `buffer` over all ranks; the buffer must stay alive and untouched until
    /// the returned reduction is waited for.
    func startSum(_ buffer: UnsafeMutableBufferPointer<Float>, what: String) throws -> PendingReduction
    /// Rank-ordered sums of doubles (losses, counts kept as doubles).
    func sum(_ values: inout [Double], what: String) throws
    /// Exact integer sums (token and pair counts).
    func sum(_ values: inout [Int64], what: String) throws
    /// Every rank's `bytes` (all of the same length), in rank order.
    func allGather(_ bytes: [UInt8], what: String) throws -> [[UInt8]]
    /// Copies `root`'s buffer into every rank's.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int, what: String) throws
    /// Waits until every rank has arrived.
    func barrier(what: String) throws
}

/// A started reduction: `wait()` returns once the buffer holds the sum.
public protocol PendingReduction: AnyObject {
    /// Drives the reduction forward without blocking; true once it is complete.
    func test() throws -> Bool
    func wait() throws
}

public extension Communicator {
    var isDistributed: Bool { size > 1 }
    /// Rank 0 writes files and reports progress; the others compute the same steps silently.
    var isWriter: Bool { rank == 0 }

    /// Blocking rank-ordered sum of a float buffer.
    func sum(_ buffer: UnsafeMutableBufferPointer<Float>, what: String) throws {
        try startSum(buffer, what: what).wait()
    }

    /// Whether any rank says yes (a stop request seen by one rank stops all of them at the same step).
    func any(_ flag: Bool, what: String) throws -> Bool {
        var v: [Int64] = [flag ? 1 : 0]
        try sum(&v, what: what)
        return v[0] > 0
    }

    /// Work on the shared run folder (creating it, packing data, training a tokenizer) runs on rank 0 first and on
    /// the other ranks after it, which then find and reuse rank 0's files: call `beginRankZeroFirst()` before it and
    /// `endRankZeroFirst()` after it on every rank. The others wait without a timeout (packing may take long; if rank 0
    /// fails, its error aborts the job), then all ranks leave together, so no rank sweeps the folder while another
    /// writes in it.
    func beginRankZeroFirst() throws {
        guard size > 1, rank != 0 else { return }
        try untimed { try barrier(what: "waiting for rank 0 to prepare the run folder") }
    }

    func endRankZeroFirst() throws {
        guard size > 1 else { return }
        if rank == 0 { try untimed { try barrier(what: "waiting for rank 0 to prepare the run folder") } }
        try untimed { try barrier(what: "waiting for every rank to open the run folder") }
    }

    private func untimed(_ body: () throws -> Void) throws {
        let saved = timeout
        timeout = .infinity
        defer { timeout = saved }
        try body()
    }
}

/// What went wrong between ranks.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// A collective did not complete in time: another rank died, hangs, or runs a different configuration.
    case timeout(rank: Int, what: String, seconds: Double)
    /// The MPI library returned an error.
    case mpi(rank: Int, what: String, message: String)
    /// The ranks disagree about something that must be identical (replica weights, configuration).
    case mismatch(String)

    public var description: String {
        switch self {
        case let .timeout(rank, what, seconds):
            return "rank \(rank): the other ranks did not answer (\(what)) within \(Int(seconds)) s: a rank has died or hangs; stopping. The last checkpoint in the run folder stays valid (resume with --resume, on any number of ranks)"
        case let .mpi(rank, what, message):
            return "rank \(rank): MPI error during \(what): \(message)"
        case let .mismatch(text):
            return text
        }
    }
}

/// One process on its own: every collective returns at once and leaves the values as they are.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var timeout: Double = .infinity
    public func startSum(_ buffer: UnsafeMutableBufferPointer<Float>, what: String) throws -> PendingReduction { Done.shared }
    public func sum(_ values: inout [Double], what: String) throws {}
    public func sum(_ values: inout [Int64], what: String) throws {}
    public func allGather(_ bytes: [UInt8], what: String) throws -> [[UInt8]] { [bytes] }
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int, what: String) throws {}
    public func barrier(what: String) throws {}

    final class Done: PendingReduction {
        static let shared = Done()
        func test() throws -> Bool { true }
        func wait() throws {}
    }
}

/// The process's communicator: `SingleProcess` unless the executable joined MPI at start (`World.joinIfLaunched`).
public enum World {
    public private(set) static var current: Communicator = SingleProcess()

    /// The number of ranks when this process was started by Open MPI's `mpirun` (it sets OMPI_COMM_WORLD_SIZE), else
    /// nil. A plain `finch` never touches MPI.
    public static func launchedSize(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        environment["OMPI_COMM_WORLD_SIZE"].flatMap { Int($0) }
    }

    /// Joins MPI when started by mpirun (even with -np 1, so the rank layout is recorded the same way); else keeps the
    /// single process. Call once, before any training.
    @discardableResult
    public static func joinIfLaunched() throws -> Communicator {
        guard launchedSize() != nil else { return current }
        current = try MPICommunicator.initialize()
        return current
    }

    /// Sets the communicator (tests run trainers against an in-process one).
    public static func use(_ communicator: Communicator) { current = communicator }
}
