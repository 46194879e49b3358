import Foundation

extension BPETokenizer {
    /// Encode throughput on one thread (what `tools/tokenizer_bench.py` measures for `tokenizers`).
    public struct Benchmark: Sendable, CustomStringConvertible {
        public var bytes: Int
        /// `encode` of every line (cold word cache at the start), MB/s of UTF-8 input.
        public var linesMBps: Double
        public var lineTokens: Int
        /// One `encode` of the whole text (cold word cache), MB/s.
        public var wholeMBps: Double
        public var wholeTokens: Int
        public var description: String {
            String(format: "%.2f MB: lines %.2f MB/s (%d tokens), whole text %.2f MB/s (%d tokens)",
                   Double(bytes) / 1e6, linesMBps, lineTokens, wholeMBps, wholeTokens)
        }
    }

    /// Measures encode throughput on `text` (best of `repeats`, each starting from an empty word cache).
    public func benchmark(text: String, repeats: Int = 3) throws -> Benchmark {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let bytes = text.utf8.count
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var bestLines = Double.infinity, bestWhole = Double.infinity
        var lineTokens = 0, wholeTokens = 0
        for _ in 0..<max(1, repeats) {
            clearCache()
            var ids: [Int32] = []
            ids.reserveCapacity(4096)
            var count = 0
            let t0 = now()
            for var line in lines {
                ids.removeAll(keepingCapacity: true)
                try line.withUTF8 { try encode(utf8: UnsafeRawBufferPointer($0), appendingTo: &ids) }
                count += ids.count
            }
            bestLines = min(bestLines, now() - t0)
            lineTokens = count
            clearCache()
            let t1 = now()
            wholeTokens = try encode(text).count
            bestWhole = min(bestWhole, now() - t1)
        }
        return Benchmark(bytes: bytes, linesMBps: Double(bytes) / bestLines / 1e6, lineTokens: lineTokens,
                         wholeMBps: Double(bytes) / bestWhole / 1e6, wholeTokens: wholeTokens)
    }
}
