/// A double-array trie over byte strings: one array load and one compare per byte walked, which is what the
/// unigram lattice (every prefix at every character) and BPE's pair lookups spend their time on.
/// Node 0 is the root; the child of `s` on byte `c` is `t = base[s] + c` when `check[t] == s`.
public struct ByteTrie: Sendable {
    private(set) var base: [Int32]
    private(set) var check: [Int32]
    /// The key's value at a node that ends one, else -1.
    private(set) var value: [Int32]

    /// `keys` may repeat; the first value of a key wins (sentencepiece keeps the first of duplicate pieces).
    public init<S: Sequence>(_ keys: S) where S.Element == (bytes: [UInt8], value: Int32) {
        // 1. A plain pointer trie.
        var children: [[(UInt8, Int32)]] = [[]]
        var values: [Int32] = [-1]
        for (key, v) in keys {
            var node = 0
            for c in key {
                if let next = children[node].first(where: { $0.0 == c })?.1 { node = Int(next); continue }
                children.append([]); values.append(-1)
                children[node].append((c, Int32(children.count - 1)))
                node = children.count - 1
            }
            if values[node] < 0 { values[node] = v }
        }
        // 2. Breadth first, give each node a base where all its children's slots are free.
        var base = [Int32](repeating: 0, count: 512), check = [Int32](repeating: -1, count: 512)
        var value = [Int32](repeating: -1, count: 512)
        check[0] = -2   // the root's own slot
        var slotOf = [Int32](repeating: -1, count: children.count)
        slotOf[0] = 0
        var queue = [0], head = 0, firstFree = 1
        var leaves: [Int] = []
        while head < queue.count {
            let node = queue[head]; head += 1
            let slot = Int(slotOf[node])
            value[slot] = values[node]
            let kids = children[node].sorted { $0.0 < $1.0 }
            if kids.isEmpty { leaves.append(slot); continue }
            while firstFree < check.count && check[firstFree] != -1 { firstFree += 1 }
            var b = max(1, firstFree - Int(kids[0].0))
            search: while true {
                let need = b + 256
                if need >= check.count {
                    let grow = max(need + 1, check.count * 2) - check.count
                    base += [Int32](repeating: 0, count: grow); value += [Int32](repeating: -1, count: grow)
                    check += [Int32](repeating: -1, count: grow)
                }
                for (c, _) in kids where check[b + Int(c)] != -1 { b += 1; continue search }
                break
            }
            base[slot] = Int32(b)
            for (c, child) in kids {
                check[b + Int(c)] = Int32(slot)
                slotOf[Int(child)] = Int32(b + Int(c))
                queue.append(Int(child))
            }
        }
        // Leaves point past every used slot, into 256 slots no node owns, so a walk from them always stops.
        var end = check.count
        while end > 1 && check[end - 1] == -1 { end -= 1 }
        let size = end + 256
        base = Array(base[0..<min(size, base.count)]) + [Int32](repeating: 0, count: max(0, size - base.count))
        check = Array(check[0..<min(size, check.count)]) + [Int32](repeating: -1, count: max(0, size - check.count))
        value = Array(value[0..<min(size, value.count)]) + [Int32](repeating: -1, count: max(0, size - value.count))
        for s in leaves { base[s] = Int32(end) }
        self.base = base; self.check = check; self.value = value
    }

    /// The value of the whole key, or -1.
    public func lookup(_ key: UnsafeRawBufferPointer) -> Int32 {
        withView { v in
            var s: Int32 = 0
            for c in key {
                s = v.child(s, c)
                if s < 0 { return -1 }
            }
            return v.value[Int(s)]
        }
    }

    public func lookup(_ key: [UInt8]) -> Int32 { key.withUnsafeBytes { lookup($0) } }

    /// Pointers for hot loops (valid inside `body` only).
    public struct View {
        public let base: UnsafePointer<Int32>, check: UnsafePointer<Int32>, value: UnsafePointer<Int32>
        /// The child of `s` on byte `c`, or -1.
        @inline(__always) public func child(_ s: Int32, _ c: UInt8) -> Int32 {
            let t = base[Int(s)] &+ Int32(c)
            return check[Int(t)] == s ? t : -1
        }
    }

    public func withView<R>(_ body: (View) throws -> R) rethrows -> R {
        try base.withUnsafeBufferPointer { b in
            try check.withUnsafeBufferPointer { c in
                try value.withUnsafeBufferPointer { v in try body(View(base: b.baseAddress!, check: c.baseAddress!, value: v.baseAddress!)) }
            }
        }
    }
}
