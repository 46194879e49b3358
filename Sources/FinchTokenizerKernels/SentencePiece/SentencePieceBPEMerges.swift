extension SentencePieceEncoder {
    /// bpe_model.cc's merge loop: symbols are user-defined pieces (longest match, never merged) or single
    /// characters; the adjacent pair whose concatenation is the best-scoring piece merges first, the leftmost
    /// among equal scores; stale queue entries are recognised by their size.
    func bpe(_ t: UnsafeRawBufferPointer, _ path: inout [PathPiece]) {
        let size = t.count
        // At most size - 1 initial pairs plus two per merge: the queue never outgrows 3 × size.
        withUnsafeTemporaryAllocation(of: Symbol.self, capacity: size) { symbols in
        withUnsafeTemporaryAllocation(of: Pair.self, capacity: 3 * size + 1) { pairs in
            trie.withView { trie in
                var count = 0, i = 0
                let users = normalizer.userDefined
                while i < size {
                    var n = users.map { u in u.withView { longestMatch($0, t, i) } } ?? 0
                    let freeze = n > 0
                    if !freeze { n = SentencePieceUTF8.oneCharLength(t, i) }
                    var node: Int32 = 0
                    for k in i..<i + n where node >= 0 { node = trie.child(node, t[k]) }
                    symbols[count] = Symbol(start: Int32(i), length: Int32(n), prev: Int32(count - 1),
                                            next: i + n < size ? Int32(count + 1) : -1, node: node, freeze: freeze)
                    count += 1
                    i += n
                }
                var heap = PairHeap(items: pairs.baseAddress!)
                func consider(_ l: Int32, _ r: Int32) {
                    guard l >= 0, r >= 0 else { return }
                    let a = symbols[Int(l)], b = symbols[Int(r)]
                    guard !a.freeze, !b.freeze, a.node >= 0 else { return }
                    var node = a.node
                    var k = Int(b.start)
                    let e = k + Int(b.length)
                    while k < e { node = trie.child(node, t[k]); if node < 0 { return }; k += 1 }
                    let id = trie.value[Int(node)]
                    guard id >= 0 else { return }
                    heap.push(Pair(score: scores[Int(id)], left: l, right: r, size: a.length + b.length, node: node))
                }
                for k in 1..<max(1, count) { consider(Int32(k - 1), Int32(k)) }
                while let top = heap.pop() {
                    let l = Int(top.left), r = Int(top.right)
                    let a = symbols[l].length, b = symbols[r].length
                    if a == 0 || b == 0 || a + b != top.size { continue }
                    symbols[l].length = top.size
                    symbols[l].node = top.node
                    symbols[l].next = symbols[r].next
                    if symbols[r].next >= 0 { symbols[Int(symbols[r].next)].prev = Int32(l) }
                    symbols[r].length = 0
                    consider(symbols[l].prev, Int32(l))
                    consider(Int32(l), symbols[l].next)
                }
                var k: Int32 = count > 0 ? 0 : -1
                while k >= 0 {
                    let s = symbols[Int(k)]
                    let id = s.node >= 0 ? trie.value[Int(s.node)] : -1
                    path.append(PathPiece(id: id >= 0 ? id : unkID, length: s.length))
                    k = s.next
                }
            }
        }
        }
    }

    struct Symbol {
        var start: Int32, length: Int32, prev: Int32, next: Int32
        /// The trie node of the symbol's bytes (-1: no piece starts with them).
        var node: Int32
        var freeze: Bool
    }

    struct Pair {
        var score: Float, left: Int32, right: Int32, size: Int32, node: Int32
        /// Pops first: higher score, then the leftmost.
        @inline(__always) func before(_ o: Pair) -> Bool { score > o.score || (score == o.score && left < o.left) }
    }

    /// A binary max-heap of candidate merges in caller-provided storage.
    struct PairHeap {
        let items: UnsafeMutablePointer<Pair>
        var count = 0

        init(items: UnsafeMutablePointer<Pair>) { self.items = items }

        mutating func push(_ p: Pair) {
            items[count] = p
            count += 1
            var i = count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                if !items[i].before(items[parent]) { break }
                (items[i], items[parent]) = (items[parent], items[i])
                i = parent
            }
        }

        mutating func pop() -> Pair? {
            guard count > 0 else { return nil }
            let top = items[0]
            count -= 1
            if count == 0 { return top }
            items[0] = items[count]
            var i = 0
            let n = count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && items[l].before(items[m]) { m = l }
                if r < n && items[r].before(items[m]) { m = r }
                if m == i { break }
                (items[i], items[m]) = (items[m], items[i])
                i = m
            }
            return top
        }
    }
}
