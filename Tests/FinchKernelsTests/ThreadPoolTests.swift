import XCTest
import Foundation
import FinchKernels

final class ThreadPoolTests: XCTestCase {
    /// Every index is visited exactly once, chunks are contiguous and numbered below `threads`.
    func testCoversRangeOnce() {
        let pool = ThreadPool.shared
        let saved = pool.threads
        defer { pool.setThreads(saved) }
        for threads in [1, 2, 3] {
            pool.setThreads(threads)
            for n in [1, 2, 7, 33, 1000] {
                var hits = [Int](repeating: 0, count: n)
                var chunks = [Int](repeating: -1, count: n)
                hits.withUnsafeMutableBufferPointer { h in
                    chunks.withUnsafeMutableBufferPointer { ch in
                        pool.parallelFor(n) { c, r in for i in r { h[i] += 1; ch[i] = c } }
                    }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: n), "threads \(threads) n \(n)")
                XCTAssertTrue(chunks.allSatisfy { $0 >= 0 && $0 < threads })
                XCTAssertEqual(chunks, chunks.sorted(), "chunks are contiguous and in order")
            }
        }
    }

    func testMinChunkLimitsParts() {
        var parts = Set<Int>()
        let lock = NSLock()
        ThreadPool.shared.parallelFor(10, minChunk: 100) { c, r in lock.lock(); parts.insert(c); lock.unlock(); XCTAssertEqual(r, 0..<10) }
        XCTAssertEqual(parts, [0])
    }

    /// A parallelFor inside a body runs inline instead of deadlocking.
    func testReentrantCallsRunInline() {
        let pool = ThreadPool.shared
        var sums = [Int](repeating: 0, count: 64)
        sums.withUnsafeMutableBufferPointer { s in
            pool.parallelFor(8) { _, outer in
                for o in outer {
                    pool.parallelFor(8) { c, inner in
                        XCTAssertEqual(c, 0)
                        for i in inner { s[o * 8 + i] += 1 }
                    }
                }
            }
        }
        XCTAssertEqual(sums, [Int](repeating: 1, count: 64))
    }

    /// Many back-to-back dispatches (decoding's pattern) all complete with correct results.
    func testManySmallDispatches() {
        var total = 0
        for _ in 0..<5_000 {
            var s = [0, 0]
            s.withUnsafeMutableBufferPointer { b in ThreadPool.shared.parallelFor(2) { c, r in b[c] = r.count } }
            total += s[0] + s[1]
        }
        XCTAssertEqual(total, 10_000)
    }

    /// Calls from two outside threads at once: the second one runs inline, both are correct.
    func testConcurrentCallers() {
        let group = DispatchGroup()
        let lock = NSLock()
        final class Results: @unchecked Sendable { var totals: [Int] = [] }
        let results = Results()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                var total = 0
                for _ in 0..<2000 {
                    var s = [0, 0, 0, 0]
                    s.withUnsafeMutableBufferPointer { b in ThreadPool.shared.parallelFor(100) { c, r in b[c] = r.count } }
                    total += s.reduce(0, +)
                }
                lock.lock(); results.totals.append(total); lock.unlock()
            }
        }
        group.wait()
        XCTAssertEqual(results.totals, [200_000, 200_000])
    }
}
