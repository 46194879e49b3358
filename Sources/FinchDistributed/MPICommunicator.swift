import Foundation
import CMPI

/// `Communicator` over Open MPI's MPI_COMM_WORLD. Collectives are started non-blocking and polled, so a wait can
/// give up after `timeout` (MPI's blocking calls would hang forever on a rank that stopped answering).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public var timeout: Double = 300
    /// The rank-ordered sum (a non-commutative MPI_Op, see shim.h).
    private var orderedSum: MPI_Op?

    private init() throws {
        rank = Int(finch_mpi_rank())
        size = Int(finch_mpi_size())
        var op: MPI_Op?
        try Self.check(finch_mpi_ordered_sum_create(&op), rank: rank, what: "creating the ordered sum")
        orderedSum = op
    }

    /// MPI_Init (once per process) and the world communicator.
    static func initialize() throws -> MPICommunicator {
        if finch_mpi_initialized() == 0 {
            let rc = finch_mpi_init()
            guard rc == MPI_SUCCESS else { throw DistributedError.mpi(rank: -1, what: "MPI_Init", message: "error code \(rc)") }
            // Leave MPI cleanly on a normal exit; an error exit aborts the whole job instead (see `abort`).
            atexit { if finch_mpi_finalized() == 0 { _ = finch_mpi_finalize() } }
        }
        return try MPICommunicator()
    }

    /// Ends every rank of the job (after one rank's error, so the others do not wait for it).
    public static func abort(code: Int32) -> Never {
        finch_mpi_abort(code)
        exit(code)
    }

    static func check(_ rc: Int32, rank: Int, what: String) throws {
        guard rc != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: 512)
        finch_mpi_error_string(rc, &text, Int32(text.count))
        throw DistributedError.mpi(rank: rank, what: what, message: String(cString: text))
    }

    /// A started MPI request, polled until done or `timeout`.
    final class Request: PendingReduction {
        var handle: MPI_Request?
        var done = false
        let owner: MPICommunicator
        let what: String
        let started = Date()
        init(owner: MPICommunicator, what: String) { self.owner = owner; self.what = what }

        func test() throws -> Bool {
            if done { return true }
            var flag: Int32 = 0
            try MPICommunicator.check(finch_mpi_test(&handle, &flag), rank: owner.rank, what: what)
            done = flag != 0
            return done
        }

        func wait() throws {
            var polls = 0
            let waitStart = Date()
            while try !test() {
                polls += 1
                // Open MPI moves a large message's fragments only inside MPI calls, so poll without sleeping (yielding
                // the core) while a transfer may be running; after 2 s of waiting the peer is late, not busy: sleep
                // between polls so a rank waiting for a slow or dead one leaves the cores to the others.
                if polls % 64 == 0 {
                    let now = Date()
                    if now.timeIntervalSince(started) > owner.timeout {
                        throw DistributedError.timeout(rank: owner.rank, what: what, seconds: owner.timeout)
                    }
                    if now.timeIntervalSince(waitStart) > 2 { usleep(200) }
                }
                sched_yield()
            }
        }
    }

    private func start(_ what: String, _ body: (inout MPI_Request?) -> Int32) throws -> Request {
        let r = Request(owner: self, what: what)
        try Self.check(body(&r.handle), rank: rank, what: what)
        return r
    }

    public func startSum(_ buffer: UnsafeMutableBufferPointer<Float>, what: String) throws -> PendingReduction {
        guard buffer.count > 0 else { return SingleProcess.Done.shared }
        precondition(buffer.count <= Int(Int32.max), "a reduction bucket is limited to 2^31 floats")
        return try start(what) { finch_mpi_iallreduce_f32(buffer.baseAddress, Int32(buffer.count), orderedSum, &$0) }
    }

    public func sum(_ values: inout [Double], what: String) throws {
        let n = Int32(values.count)
        try values.withUnsafeMutableBufferPointer { b in
            try start(what) { finch_mpi_iallreduce_f64(b.baseAddress, n, orderedSum, &$0) }.wait()
        }
    }

    public func sum(_ values: inout [Int64], what: String) throws {
        let n = Int32(values.count)
        try values.withUnsafeMutableBufferPointer { b in
            try start(what) { finch_mpi_iallreduce_i64_sum(b.baseAddress, n, &$0) }.wait()
        }
    }

    public func allGather(_ bytes: [UInt8], what: String) throws -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: bytes.count * size)
        let n = Int32(bytes.count)
        try bytes.withUnsafeBytes { mine in
            try all.withUnsafeMutableBytes { out in
                try start(what) { finch_mpi_iallgather_bytes(mine.baseAddress, out.baseAddress, n, &$0) }.wait()
            }
        }
        return (0..<size).map { Array(all[($0 * bytes.count)..<(($0 + 1) * bytes.count)]) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int, what: String) throws {
        precondition(buffer.count <= Int(Int32.max), "a broadcast is limited to 2 GiB")
        try start(what) { finch_mpi_ibcast_bytes(buffer.baseAddress, Int32(buffer.count), Int32(root), &$0) }.wait()
    }

    public func barrier(what: String) throws {
        try start(what) { finch_mpi_ibarrier(&$0) }.wait()
    }
}
