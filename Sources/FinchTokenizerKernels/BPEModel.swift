import Foundation

/// Merge ranks keyed by the pair of symbol ids: open addressing over `UInt64` keys (`left << 32 | right`),
/// value `rank << 32 | merged id`.
public struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0
    public static let empty = UInt64.max

    public init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: MergeTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) public static func hash(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 29)
    }

    /// Inserts or overwrites (a later duplicate merge wins, as in `tokenizers`).
    public mutating func insert(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let k = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var i = MergeTable.hash(k) & mask
        while keys[i] != MergeTable.empty && keys[i] != k { i = (i + 1) & mask }
        if keys[i] == MergeTable.empty { count += 1 }
        keys[i] = k
        values[i] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// Read access for the hot loop.
    public func withView<R>(_ body: (View) throws -> R) rethrows -> R {
        try keys.withUnsafeBufferPointer { k in
            try values.withUnsafeBufferPointer { v in try body(View(keys: k.baseAddress!, values: v.baseAddress!, mask: mask)) }
        }
    }

    public struct View {
        public let keys: UnsafePointer<UInt64>
        public let values: UnsafePointer<UInt64>
        public let mask: Int
        /// `rank << 32 | merged`, or `UInt64.max` when the pair does not merge.
        @inline(__always) public func get(_ left: Int32, _ right: Int32) -> UInt64 {
            let k = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
            var i = MergeTable.hash(k) & mask
            while true {
                let key = keys[i]
                if key == k { return values[i] }
                if key == MergeTable.empty { return UInt64.max }
                i = (i + 1) & mask
            }
        }
    }
}

/// Applies BPE merges to a word's initial symbols in place (lowest rank first, leftmost among equal ranks:
/// the order of `tokenizers`' `Word::merge_all` and llama.cpp's `llm_tokenizer_bpe`).
public enum BPEMerge {
    /// Short words: ranks of adjacent pairs kept in an array, O(n²) in the worst case.
    public static func mergeShort(_ sym: inout [Int32], _ m: MergeTable.View) {
        let n = sym.count
        if n < 2 { return }
        if n > 48 { mergeLong(&sym, m); return }
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { rk in
            var count = n
            for i in 0..<(n - 1) { rk[i] = m.get(sym[i], sym[i + 1]) }
            sym.withUnsafeMutableBufferPointer { s in
                while count > 1 {
                    var best = 0, bestValue = rk[0]
                    var i = 1
                    while i < count - 1 {
                        if rk[i] < bestValue { bestValue = rk[i]; best = i }   // strict: leftmost of equal ranks
                        i += 1
                    }
                    if bestValue == UInt64.max { break }
                    s[best] = Int32(truncatingIfNeeded: bestValue & 0xFFFF_FFFF)
                    // remove best+1
                    var j = best + 1
                    while j < count - 1 { s[j] = s[j + 1]; rk[j] = rk[j + 1]; j += 1 }
                    count -= 1
                    if best > 0 { rk[best - 1] = m.get(s[best - 1], s[best]) }
                    if best < count - 1 { rk[best] = m.get(s[best], s[best + 1]) }
                }
            }
            sym.removeLast(n - count)
        }
    }

    /// Long words: a binary heap of (rank, position) over a linked list of symbols.
    public static func mergeLong(_ sym: inout [Int32], _ m: MergeTable.View) {
        let n = sym.count
        if n < 2 { return }
        let heapCapacity = 3 * n + 8
        var kept = n
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * n) { links in
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: heapCapacity) { heap in
            let prev = links.baseAddress!, next = links.baseAddress! + n
            for i in 0..<n { prev[i] = Int32(i - 1); next[i] = i + 1 < n ? Int32(i + 1) : -1 }
            var count = 0
            @inline(__always) func push(_ e: UInt64) {
                var c = count
                count += 1
                heap[c] = e
                while c > 0 {
                    let p = (c - 1) >> 1
                    if heap[p] <= heap[c] { break }
                    heap.swapAt(p, c); c = p
                }
            }
            @inline(__always) func pop() -> UInt64 {
                let top = heap[0]
                count -= 1
                if count > 0 {
                    heap[0] = heap[count]
                    var c = 0
                    while true {
                        let l = 2 * c + 1, r = l + 1
                        var s = c
                        if l < count && heap[l] < heap[s] { s = l }
                        if r < count && heap[r] < heap[s] { s = r }
                        if s == c { break }
                        heap.swapAt(s, c); c = s
                    }
                }
                return top
            }
            sym.withUnsafeMutableBufferPointer { sp in
                let s = sp.baseAddress!
                for i in 0..<(n - 1) {
                    let v = m.get(s[i], s[i + 1])
                    if v != UInt64.max { push((v >> 32) << 32 | UInt64(i)) }
                }
                // a merged-away symbol is marked by prev = -2
                while count > 0 {
                    let e = pop()
                    let pos = Int(e & 0xFFFF_FFFF), rank = e >> 32
                    guard prev[pos] != -2, next[pos] >= 0 else { continue }
                    let right = Int(next[pos])
                    let v = m.get(s[pos], s[right])
                    guard v != UInt64.max, v >> 32 == rank else { continue }
                    s[pos] = Int32(truncatingIfNeeded: v & 0xFFFF_FFFF)
                    prev[right] = -2
                    next[pos] = next[right]
                    if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
                    if prev[pos] >= 0 {
                        let l = Int(prev[pos])
                        let lv = m.get(s[l], s[pos])
                        if lv != UInt64.max && count < heapCapacity { push((lv >> 32) << 32 | UInt64(l)) }
                    }
                    if next[pos] >= 0 {
                        let rv = m.get(s[pos], s[Int(next[pos])])
                        if rv != UInt64.max && count < heapCapacity { push((rv >> 32) << 32 | UInt64(pos)) }
                    }
                }
                var w = 0
                var i: Int32 = 0
                while i >= 0 { s[w] = s[Int(i)]; w += 1; i = next[Int(i)] }
                kept = w
            }
        }
        }
        sym.removeLast(n - kept)
    }
}

/// Word → ids memo (as `tokenizers`' BPE cache): keys are the word's raw bytes.
public final class WordCache {
    private var slots: [Int32]          // entry index + 1, 0 = empty
    private var hashes: [UInt64] = []
    private var keyStart: [Int32] = [], keyLen: [Int32] = []
    private var idStart: [Int32] = [], idLen: [Int32] = []
    private var keyBytes: [UInt8] = []
    private var ids: [Int32] = []
    private var mask: Int
    public let maxEntries: Int
    public static let maxWordBytes = 256

    public init(maxEntries: Int = 1 << 16) {
        self.maxEntries = maxEntries
        var size = 16
        while size < maxEntries * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    public var count: Int { hashes.count }

    public func clear() {
        for i in slots.indices { slots[i] = 0 }
        hashes.removeAll(keepingCapacity: true); keyStart.removeAll(keepingCapacity: true)
        keyLen.removeAll(keepingCapacity: true); idStart.removeAll(keepingCapacity: true)
        idLen.removeAll(keepingCapacity: true); keyBytes.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
    }

    @inline(__always) public static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(n)
        var i = 0
        while i + 8 <= n {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            h = (h ^ w) &* 0x0000_0100_0000_01B3
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var s: UInt64 = 0
        while i < n { tail |= UInt64(p[i]) << s; s += 8; i += 1 }
        h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        return h ^ (h >> 32)
    }

    /// Appends the cached ids of the word to `out`; false when absent.
    @inline(__always)
    public func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64, into out: inout [Int32]) -> Bool {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = Int(slots[i])
            if s == 0 { return false }
            let e = s - 1
            if hashes[e] == h && Int(keyLen[e]) == n {
                let ks = Int(keyStart[e])
                let same = keyBytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + ks, p, n) == 0 }
                if same {
                    let st = Int(idStart[e]), len = Int(idLen[e])
                    ids.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[st..<(st + len)])) }
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    public func insert(_ p: UnsafePointer<UInt8>, _ n: Int, _ h: UInt64, _ value: ArraySlice<Int32>) {
        if hashes.count >= maxEntries || keyBytes.count > (1 << 26) { return }   // full: stop inserting (as tokenizers)
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = Int32(hashes.count + 1)
        hashes.append(h)
        keyStart.append(Int32(keyBytes.count)); keyLen.append(Int32(n))
        keyBytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        idStart.append(Int32(ids.count)); idLen.append(Int32(value.count))
        ids.append(contentsOf: value)
    }
}
