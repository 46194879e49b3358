extension SentencePieceEncoder {
    /// Encodes a `segmentable` text part by part (cut before each "▁" that follows another character), serving
    /// parts from the cache. BPE merges never cross a cut, so a part's pieces are the same alone. The unigram
    /// Viterbi's pieces are too, up to rounding: the path score entering a part (`base`) shifts every sum in it,
    /// and float rounding of those sums breaks near-ties. A cached unigram part is used only when its smallest
    /// score gap exceeds what rounding at this base can move (`tag`); otherwise it is recomputed at `base`.
    func segmented(_ t: UnsafeRawBufferPointer, _ path: inout [PathPiece]) {
        let n = t.count
        var start = 0
        var base: Float = 0
        while start < n {
            var end = start + 1
            while end < n {
                if t[end] == 0xE2, end + 2 < n, t[end + 1] == 0x96, t[end + 2] == 0x81,
                   !(t[end - 1] == 0x81 && end >= 3 && t[end - 3] == 0xE2 && t[end - 2] == 0x96) { break }
                end += 1
            }
            let part = UnsafeRawBufferPointer(rebasing: t[start..<end])
            let before = path.count
            if isBPE {
                if part.count > SegmentCache.maxSegmentBytes {
                    bpe(part, &path)
                } else {
                    let h = SegmentCache.hash(part)
                    if cache.lookup(part, h, appendingTo: &path) == nil {
                        bpe(part, &path)
                        cache.insert(part, h, path: path[before...], tag: (0, 0))
                    }
                }
            } else {
                encodeUnigramPart(part, base: base, &path)
                base = score(after: path[before...], base: base)
            }
            start = end
        }
    }

    private func encodeUnigramPart(_ part: UnsafeRawBufferPointer, base: Float, _ path: inout [PathPiece]) {
        let before = path.count
        guard part.count <= SegmentCache.maxSegmentBytes else { unigram(part, base: base, &path); return }
        let h = SegmentCache.hash(part)
        var tag = cache.lookup(part, h, appendingTo: &path)
        if tag == nil {
            let (margin, magnitude) = unigram(part, base: 0, &path)
            // Roundings at base B move a comparison by at most 2·depth·(|B| + 2·magnitude)·2⁻²⁴ (depth ≤ bytes);
            // twice that, plus slack, is required of the smallest gap.
            let unit = 4 * Double(part.count) * 0x1p-24
            let t = (Float(margin / unit).nextDown, Float(2 * magnitude + 1).nextUp)
            cache.insert(part, h, path: path[before...], tag: t)
            tag = t
        }
        if base == 0 || tag!.0 > abs(base) + tag!.1 { return }
        path.removeLast(path.count - before)
        unigram(part, base: base, &path)
    }
}
