import Foundation
import Synchronization

/// A small fixed pool of persistent worker threads for data-parallel kernels.
///
/// `parallelFor(n)` splits `0..<n` into contiguous chunks, one per thread (the caller runs chunk 0),
/// and returns when all are done. The thread count is fixed at start (env `FINCH_THREADS`, default:
/// active processor count) and can be changed with `setThreads` (benchmarks compare 1 and 2 threads).
///
/// Dispatch is cheap because decoding calls it hundreds of times per token: workers spin on a
/// generation counter for a short while after each job and only then sleep on a condition variable.
/// A call made from inside a `parallelFor` body (or while another thread owns the pool) runs inline.
public final class ThreadPool: @unchecked Sendable {
    public static let shared = ThreadPool()

    /// The number of threads `parallelFor` uses (the caller included).
    public private(set) var threads: Int

    /// Spin iterations a worker waits for the next job before going to sleep (~100 µs).
    private static let spinLimit = 40_000

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var workerCount = 0

    // The current job, written by the caller before bumping `generation`.
    private var job: ((Int, Range<Int>) -> Void)?
    private var jobN = 0
    private var jobParts = 0

    init() {
        if let s = ProcessInfo.processInfo.environment["FINCH_THREADS"], let n = Int(s), n > 0 {
            threads = n
        } else {
            threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    /// Sets the thread count (at least 1); workers are started lazily on the next `parallelFor`.
    public func setThreads(_ n: Int) { threads = max(1, n) }

    /// Runs `body(chunkIndex, range)` over `0..<n` split into at most `threads` contiguous ranges of at
    /// least `minChunk` elements; chunk 0 runs on the calling thread. Returns when every chunk is done.
    public func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        guard n > 0 else { return }
        let parts = max(1, min(threads, n / max(1, minChunk)))
        if parts == 1 || ThreadPool.insideBody { body(0, 0..<n); return }
        // Another thread is using the pool: do the work inline rather than queue behind it.
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            body(0, 0..<n); return
        }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(upTo: parts - 1)

        withoutActuallyEscaping(body) { body in
            job = body; jobN = n; jobParts = parts
            // Every started worker acknowledges every job, also those with no chunk of it (index ≥ parts): until
            // all have read jobN/jobParts the next call must not overwrite them (ThreadSanitizer found that race
            // when the thread count exceeds a job's parts).
            pending.store(workerCount, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            ThreadPool.insideBody = true
            body(0, 0..<(n / parts))
            ThreadPool.insideBody = false
            // Spin for the workers; if one was descheduled (a busy machine), yield the core to it.
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 20_000 { sched_yield() }
            }
            job = nil
        }
    }

    // MARK: - workers

    private static let insideKey: pthread_key_t = {
        var k = pthread_key_t(); pthread_key_create(&k, nil); return k
    }()
    /// Whether the current thread is running a `parallelFor` body.
    static var insideBody: Bool {
        get { pthread_getspecific(insideKey) != nil }
        set { pthread_setspecific(insideKey, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }

    private func startWorkers(upTo count: Int) {
        while workerCount < count {
            workerCount += 1
            let index = workerCount
            // The worker must start from the generation before the job being dispatched now.
            let start = generation.load(ordering: .acquiring)
            let t = Thread { [unowned self] in self.workerLoop(index, seen: start) }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Calls the current job; a separate function so that the worker's reference to the closure is
    /// released before it reports completion (`withoutActuallyEscaping` checks that none is left).
    @inline(never)
    private func runJob(_ index: Int, _ range: Range<Int>) {
        job?(index, range)
    }

    private func workerLoop(_ index: Int, seen start: Int) {
        ThreadPool.insideBody = true
        var seen = start
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < ThreadPool.spinLimit { continue }
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&cond, &mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&mutex)
                break
            }
            seen = generation.load(ordering: .acquiring)
            let parts = jobParts, n = jobN
            if index < parts { runJob(index, (n * index / parts)..<(n * (index + 1) / parts)) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}
