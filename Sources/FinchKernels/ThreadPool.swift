import Foundation

/// A small fixed pool of worker threads for data-parallel kernels.
///
/// `parallelFor(n)` splits `0..<n` into contiguous chunks, one per thread (the caller runs chunk 0),
/// and returns when all are done. The thread count is fixed at start (env `FINCH_THREADS`, default:
/// active processor count) and can be lowered with `setThreads` (benchmarks compare 1 and 2 threads).
/// NOTE: placeholder implementation using DispatchQueue.concurrentPerform; the kernel work replaces it.
public final class ThreadPool: @unchecked Sendable {
    public static let shared = ThreadPool()

    public private(set) var threads: Int

    init() {
        if let s = ProcessInfo.processInfo.environment["FINCH_THREADS"], let n = Int(s), n > 0 {
            threads = n
        } else {
            threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
    }

    public func setThreads(_ n: Int) { threads = max(1, n) }

    /// Runs `body(chunkIndex, range)` over `0..<n` split into at most `threads` contiguous ranges.
    public func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let parts = max(1, min(threads, n / max(1, minChunk)))
        if parts == 1 { body(0, 0..<n); return }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = n * p / parts, hi = n * (p + 1) / parts
                body(p, lo..<hi)
            }
        }
    }
}
