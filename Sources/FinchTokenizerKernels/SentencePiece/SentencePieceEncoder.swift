/// A native encoder for SentencePiece models that gives libsentencepiece 0.1.97's ids: its normaliser, the
/// unigram model's optimised Viterbi (`EncodeOptimized`, with the library's float/double arithmetic, which
/// decides exact ties) and the BPE model's merge loop, then the processor's unknown handling (byte fallback, or
/// runs of unknown characters merged into one unknown id).
///
/// Model features it leaves to the library (`init` throws `Unsupported`): the word and char model types, BPE
/// models with unused pieces (the library re-splits them through a per-call table), and BPE models where a
/// control, unknown or byte piece is also a normal piece or a single character (the library's piece lookup
/// would return the reserved id).
public final class SentencePieceEncoder: @unchecked Sendable {
    public struct Unsupported: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "native SentencePiece encoder: \(reason)" }
    }

    public let spec: SentencePieceModelSpec
    let normalizer: SentencePieceNormalizer
    /// Normal, user-defined (and, for unigram, not unused) pieces: what the model may output.
    let trie: ByteTrie
    let scores: [Float]
    /// Unigram: each piece's score as the Viterbi adds it (user-defined pieces get length × max score − 0.1).
    let latticeScores: [Double]
    let unkID: Int32
    let unkScore: Float
    let byteIDs: [Int32]
    let isBPE: Bool
    /// Whether a normalised text may be cut before every "▁" that follows another character and each part
    /// encoded alone: true when no piece holds "▁" after another character (so no piece crosses such a cut)
    /// and "▁" itself is a piece (so a part never starts with an unknown piece). Parts are then memoised.
    let segmentable: Bool
    let cache = SegmentCache()

    public init(modelBytes: [UInt8]) throws {
        let spec = try SentencePieceModelSpec(modelBytes)
        self.spec = spec
        switch spec.modelType {
        case .unigram: isBPE = false
        case .bpe: isBPE = true
        case .word, .char: throw Unsupported(reason: "model type \(spec.modelType) is encoded by the library")
        }
        let pieces = spec.pieces
        guard let unk = pieces.firstIndex(where: { $0.kind == .unknown }) else { throw Unsupported(reason: "no unknown piece") }
        unkID = Int32(unk)
        var minScore = Float.greatestFiniteMagnitude, maxScore = Float.leastNormalMagnitude   // as FLT_MAX, FLT_MIN
        for p in pieces where p.kind == .normal { minScore = min(minScore, p.score); maxScore = max(maxScore, p.score) }
        unkScore = minScore - 10   // kUnkPenalty
        scores = pieces.map(\.score)
        latticeScores = pieces.map { p in
            p.kind == .userDefined ? Double(Float(p.bytes.count) * maxScore) - 0.1 : Double(p.score)
        }
        let outputs: [SentencePieceModelSpec.PieceKind] = [.normal, .userDefined]
        if isBPE, pieces.contains(where: { $0.kind == .unused }) {
            throw Unsupported(reason: "BPE model with unused pieces")
        }
        var seen = Set<[UInt8]>()
        for p in pieces where outputs.contains(p.kind) || p.kind == .unused {
            guard seen.insert(p.bytes).inserted else { throw Unsupported(reason: "duplicate piece") }
        }
        if isBPE {
            for p in pieces where !outputs.contains(p.kind) && p.kind != .unused {
                let single = p.bytes.withUnsafeBytes { !$0.isEmpty && SentencePieceUTF8.oneCharLength($0, 0) == $0.count }
                if single || seen.contains(p.bytes) {
                    throw Unsupported(reason: "reserved piece \"\(String(decoding: p.bytes, as: UTF8.self))\" shadows a character or piece")
                }
            }
        }
        trie = ByteTrie(pieces.enumerated().lazy.filter { outputs.contains($0.element.kind) }
            .map { (bytes: $0.element.bytes, value: Int32($0.offset)) })
        var bytes = [Int32](repeating: -1, count: 256)
        if spec.byteFallback {
            let hex = Array("0123456789ABCDEF".utf8)
            var byteIndex: [[UInt8]: Int32] = [:]
            for (i, p) in pieces.enumerated() where p.kind == .byte { byteIndex[p.bytes] = Int32(i) }
            for b in 0..<256 {
                guard let id = byteIndex[Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]] else {
                    throw Unsupported(reason: "byte fallback without a piece for byte \(b)")
                }
                bytes[b] = id
            }
        }
        byteIDs = bytes
        let userDefined = pieces.filter { $0.kind == .userDefined }
        let userTrie = userDefined.isEmpty ? nil : ByteTrie(userDefined.map { (bytes: $0.bytes, value: Int32(1)) })
        normalizer = try SentencePieceNormalizer(spec, userDefined: userTrie)
        let space = SentencePieceNormalizer.space
        segmentable = spec.escapeWhitespaces && !spec.treatWhitespaceAsSuffix && trie.lookup(space) >= 0
            && pieces.allSatisfy { p in
                guard outputs.contains(p.kind) else { return true }
                var i = 0
                while i + 3 <= p.bytes.count && Array(p.bytes[i..<i + 3]) == space { i += 3 }
                while i + 3 <= p.bytes.count { if Array(p.bytes[i..<i + 3]) == space { return false }; i += 1 }
                return true
            }
    }

    public convenience init<D: Collection>(modelBytes: D) throws where D.Element == UInt8 { try self.init(modelBytes: Array(modelBytes)) }

    /// Appends the ids of UTF-8 `text` (as SentencePieceProcessor::Encode, no BOS/EOS).
    public func encode(_ text: UnsafeRawBufferPointer, appendingTo ids: inout [Int32]) {
        var normalized: [UInt8] = []
        normalizer.normalize(text, into: &normalized)
        if normalized.isEmpty { return }
        var path: [PathPiece] = []
        path.reserveCapacity(normalized.count / 2 + 4)
        normalized.withUnsafeBytes { t in
            if segmentable { segmented(t, &path) } else if isBPE { bpe(t, &path) } else { unigram(t, base: 0, &path) }
            emit(t, path, &ids)
        }
    }

    public func encode(_ text: String) -> [Int32] {
        var text = text, ids: [Int32] = []
        text.withUTF8 { encode(UnsafeRawBufferPointer($0), appendingTo: &ids) }
        return ids
    }

    /// The normalised text (for tests against the library).
    public func normalize(_ text: String) -> [UInt8] {
        var text = text, out: [UInt8] = []
        text.withUTF8 { normalizer.normalize(UnsafeRawBufferPointer($0), into: &out) }
        return out
    }

    /// The ids of a path, as PopulateSentencePieceText makes them: an unknown piece becomes its bytes' byte
    /// pieces (byte fallback) or one unknown id for a whole run of unknown pieces.
    func emit(_ t: UnsafeRawBufferPointer, _ path: [PathPiece], _ ids: inout [Int32]) {
        var offset = 0, prevUnk = false
        for p in path {
            let end = offset + Int(p.length)
            if p.id == unkID {
                if spec.byteFallback {
                    for k in offset..<end { ids.append(byteIDs[Int(t[k])]) }
                } else if !prevUnk {
                    ids.append(p.id)
                }
                prevUnk = true
            } else {
                ids.append(p.id)
                prevUnk = false
            }
            offset = end
        }
    }
}
