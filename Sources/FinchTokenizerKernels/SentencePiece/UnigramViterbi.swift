extension SentencePieceEncoder {
    /// unigram_model.cc's EncodeOptimized: the best path ending at each byte position, walking every piece
    /// that starts at each character. A piece's candidate score is computed in double (the library's score
    /// expression is a double) and stored as float; the unknown candidate stays float. An earlier start wins an
    /// exact tie (only a strictly better candidate replaces the stored one). These roundings decide ties such
    /// as "Y"+"YYY" against "YYY"+"Y", so they are kept exactly.
    func unigram(_ t: UnsafeRawBufferPointer, _ ids: inout [Int32]) {
        let size = t.count
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size + 1) { bestScore in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: size + 1) { startsAt in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: size + 1) { bestID in
            bestScore[0] = 0
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
            // Backtrack, then emit in order.
            var count = 0, end = size
            while end > 0 { count += 1; end = Int(startsAt[end]) }
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: count + 1) { ends in
                var k = count
                end = size
                ends[0] = 0
                while end > 0 { ends[k] = Int32(end); k -= 1; end = Int(startsAt[end]) }
                var prevUnk = false
                for k in 1...count {
                    let e = Int(ends[k])
                    emit(t, Int(ends[k - 1]), e, bestID[e], &prevUnk, &ids)
                }
            }
        }
        }
        }
    }
}
