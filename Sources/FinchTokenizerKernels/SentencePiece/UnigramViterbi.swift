extension SentencePieceEncoder {
    /// unigram_model.cc's EncodeOptimized: the best path ending at each byte position, walking every piece
    /// that starts at each character. A piece's candidate score is computed in double (the library's score
    /// expression is a double) and stored as float; the unknown candidate stays float. An earlier start wins an
    /// exact tie (only a strictly better candidate replaces the stored one). These roundings decide ties such
    /// as "Y"+"YYY" against "YYY"+"Y", so they are kept exactly.
    ///
    /// `base` is the path score at the start of `t` (0 for a whole text; a segment continues the score of the
    /// text before it). Returns the smallest gap between compared scores and the largest magnitude a path
    /// score reached (for `SegmentCache`: how far a different base may move the roundings).
    @discardableResult
    func unigram(_ t: UnsafeRawBufferPointer, base: Float, _ path: inout [PathPiece]) -> (margin: Double, magnitude: Double) {
        let size = t.count
        var margin = Double.infinity, magnitude = 0.0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size + 1) { bestScore in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: size + 1) { startsAt in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: size + 1) { bestID in
            bestScore[0] = base
            for k in 0...size { startsAt[k] = -1 }
            latticeScores.withUnsafeBufferPointer { lattice in
                trie.withView { trie in
                    var start = 0
                    while start < size {
                        let till = bestScore[start]
                        let tillD = Double(till)
                        let mblen = SentencePieceUTF8.oneCharLength(t, start)
                        var single = false
                        var s: Int32 = 0, pos = start
                        while pos < size {
                            s = trie.child(s, t[pos])
                            if s < 0 { break }
                            pos += 1
                            let id = trie.value[Int(s)]
                            if id < 0 { continue }
                            let candidate = lattice[Int(id)] + tillD
                            magnitude = max(magnitude, abs(candidate))
                            if startsAt[pos] >= 0 { margin = min(margin, abs(candidate - Double(bestScore[pos]))) }
                            if startsAt[pos] == -1 || candidate > Double(bestScore[pos]) {
                                bestScore[pos] = Float(candidate)
                                startsAt[pos] = Int32(start)
                                bestID[pos] = id
                            }
                            if pos - start == mblen { single = true }
                        }
                        if !single {
                            let end = start + mblen
                            let candidate = unkScore + till
                            magnitude = max(magnitude, abs(Double(candidate)))
                            if startsAt[end] >= 0 { margin = min(margin, abs(Double(candidate) - Double(bestScore[end]))) }
                            if startsAt[end] == -1 || candidate > bestScore[end] {
                                bestScore[end] = candidate
                                startsAt[end] = Int32(start)
                                bestID[end] = unkID
                            }
                        }
                        start += mblen
                    }
                }
            }
            // Backtrack, then append in order.
            var count = 0, end = size
            while end > 0 { count += 1; end = Int(startsAt[end]) }
            let first = path.count
            path.append(contentsOf: repeatElement(PathPiece(id: 0, length: 0), count: count))
            end = size
            var k = first + count - 1
            while end > 0 {
                let start = Int(startsAt[end])
                path[k] = PathPiece(id: bestID[end], length: Int32(end - start))
                k -= 1
                end = start
            }
        }
        }
        }
        return (margin, magnitude)
    }

    /// The path score after `path`, starting from `base`: the same roundings the Viterbi made along it.
    func score(after path: ArraySlice<PathPiece>, base: Float) -> Float {
        var b = base
        for p in path { b = p.id == unkID ? unkScore + b : Float(latticeScores[Int(p.id)] + Double(b)) }
        return b
    }
}
