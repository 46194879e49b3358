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
        // 2. Breadth first, give each node a base where all its children's slots are free. Free slots form a
        // doubly linked list, so the search skips full regions; a node that fits none of the first 48 holes
        // goes to the end (bounded work per node: large vocabularies build in well under a second).
        var base = [Int32](), check = [Int32](), value = [Int32]()
        var nextFree = [Int32](), prevFree = [Int32]()
        var head: Int32 = -1, tail: Int32 = -1
        func grow(to size: Int) {
            let old = check.count
            guard size > old else { return }
            base += repeatElement(0, count: size - old); value += repeatElement(-1, count: size - old)
            check += repeatElement(-1, count: size - old)
            nextFree += repeatElement(-1, count: size - old); prevFree += repeatElement(-1, count: size - old)
            for i in old..<size {   // append to the free list (slot 0 is the root, never free)
                if i == 0 { continue }
                prevFree[i] = tail
                if tail >= 0 { nextFree[Int(tail)] = Int32(i) } else { head = Int32(i) }
                tail = Int32(i)
            }
        }
        func take(_ i: Int) {
            let p = prevFree[i], n = nextFree[i]
            if p >= 0 { nextFree[Int(p)] = n } else { head = n }
            if n >= 0 { prevFree[Int(n)] = p } else { tail = p }
        }
        grow(to: 1024)
        check[0] = -2   // the root's own slot
        var slotOf = [Int32](repeating: -1, count: children.count)
        slotOf[0] = 0
        var queue = [0], qhead = 0, usedEnd = 1
        var leaves: [Int] = []
        while qhead < queue.count {
            let node = queue[qhead]; qhead += 1
            let slot = Int(slotOf[node])
            value[slot] = values[node]
            let kids = children[node].sorted { $0.0 < $1.0 }
            if kids.isEmpty { leaves.append(slot); continue }
            let first = Int(kids[0].0)
            var b = -1, f = head, tries = 0
            while f >= 0 && tries < 48 {
                let cand = Int(f) - first
                if cand >= 1 && cand + 256 < check.count && kids.allSatisfy({ check[cand + Int($0.0)] == -1 }) { b = cand; break }
                f = nextFree[Int(f)]; tries += 1
            }
            if b < 0 {
                b = max(1, usedEnd - first)
                grow(to: b + 257)
            }
            base[slot] = Int32(b)
            for (c, child) in kids {
                let t = b + Int(c)
                check[t] = Int32(slot)
                take(t)
                usedEnd = max(usedEnd, t + 1)
                slotOf[Int(child)] = Int32(t)
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
