import Foundation

/// Token ids with a per-token loss mask (1 = trained).
public struct EncodedSequence: Equatable, Sendable {
    public var ids: [Int32]
    public var mask: [UInt8]
    public init(ids: [Int32] = [], mask: [UInt8] = []) { self.ids = ids; self.mask = mask }
    public var count: Int { ids.count }
    public var trainedCount: Int { mask.reduce(0) { $0 + Int($1) } }
    public mutating func append(_ other: EncodedSequence) { ids += other.ids; mask += other.mask }
}

/// Errors turning a record into tokens.
public struct EncodeError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Renders conversations with a chat template and tokenizes them segment by segment, producing ids and
/// loss masks. This is the one place both training and generation turn messages into tokens.
public final class ChatEncoder: @unchecked Sendable {
    public let tokenizer: any TextTokenizer
    public let template: ChatTemplate
    /// Train on prompt segments too (default: responses only).
    public let trainOnPrompt: Bool
    /// Id of the template's end-of-turn token.
    public let endOfTurnID: Int
    /// Ids at which generation stops: end-of-turn and EOS.
    public let stopIDs: [Int]
    /// Special strings mapped straight to ids, longest first.
    private let specials: [(String, Int32)]
    private let specialBytes: [([UInt8], Int32)]
    /// Bytes that can start a special string.
    private let firstBytes: [Bool]
    /// Ids of short chunks (template headers such as "assistant\n" recur in every record); sentencepiece's
    /// per-call overhead dominates for them.
    private var shortCache: [[UInt8]: [Int32]] = [:]
    private let cacheLock = NSLock()
    private static let shortChunk = 48, cacheLimit = 4096

    public init(tokenizer: any TextTokenizer, template: ChatTemplate, trainOnPrompt: Bool = false) throws {
        self.tokenizer = tokenizer
        self.template = template
        self.trainOnPrompt = trainOnPrompt
        var map: [String: Int32] = [:]
        var candidates = template.specialTokens
        for id in [tokenizer.bosID, tokenizer.eosID] where id >= 0 { if let p = tokenizer.piece(id) { candidates.append(p) } }
        for s in candidates { if let id = tokenizer.id(of: s) { map[s] = Int32(id) } }
        specials = map.sorted { $0.key.utf8.count > $1.key.utf8.count || ($0.key.utf8.count == $1.key.utf8.count && $0.key < $1.key) }
            .map { ($0.key, $0.value) }
        specialBytes = specials.map { (Array($0.0.utf8), $0.1) }
        var first = [Bool](repeating: false, count: 256)
        for (b, _) in specialBytes where !b.isEmpty { first[Int(b[0])] = true }
        firstBytes = first
        guard let eot = map[template.endOfTurn] ?? tokenizer.id(of: template.endOfTurn).map(Int32.init) else {
            throw EncodeError(message: "chat template \"\(template.name)\": end-of-turn token \"\(template.endOfTurn)\" is not a single piece of tokenizer \(tokenizer.source); train the tokenizer with it as a user-defined symbol or pick another template")
        }
        endOfTurnID = Int(eot)
        stopIDs = Array(Set([Int(eot), tokenizer.eosID].filter { $0 >= 0 })).sorted()
    }

    /// Ids of text, with the template's special strings (and BOS/EOS pieces) mapped to their ids and the
    /// text between them encoded by sentencepiece.
    public func encode(_ text: String) throws -> [Int32] {
        var out: [Int32] = []
        try encode(text, appendingTo: &out)
        return out
    }

    /// Appends the ids of `text` to `out`. Special strings are found by a byte scan over the UTF-8 text.
    public func encode(_ text: String, appendingTo out: inout [Int32]) throws {
        var text = text
        try text.withUTF8 { u in
            let raw = UnsafeRawBufferPointer(u)
            var start = 0, i = 0
            let n = raw.count
            while i < n {
                if firstBytes[Int(raw[i])] {
                    if let (len, id) = specialAt(raw, i) {
                        try encodeChunk(UnsafeRawBufferPointer(rebasing: raw[start..<i]), appendingTo: &out)
                        out.append(id)
                        i += len
                        start = i
                        continue
                    }
                }
                i += 1
            }
            try encodeChunk(UnsafeRawBufferPointer(rebasing: raw[start..<n]), appendingTo: &out)
        }
    }

    private func encodeChunk(_ bytes: UnsafeRawBufferPointer, appendingTo out: inout [Int32]) throws {
        guard !bytes.isEmpty else { return }
        guard bytes.count <= Self.shortChunk else { return try tokenizer.encode(utf8: bytes, appendingTo: &out) }
        let key = Array(bytes)
        cacheLock.lock()
        let hit = shortCache[key]
        cacheLock.unlock()
        if let hit { out += hit; return }
        var ids: [Int32] = []
        try tokenizer.encode(utf8: bytes, appendingTo: &ids)
        cacheLock.lock()
        if shortCache.count < Self.cacheLimit { shortCache[key] = ids }
        cacheLock.unlock()
        out += ids
    }

    /// The longest special string starting at byte `i`, if any.
    private func specialAt(_ raw: UnsafeRawBufferPointer, _ i: Int) -> (Int, Int32)? {
        for (bytes, id) in specialBytes where i + bytes.count <= raw.count {
            var k = 0
            while k < bytes.count && raw[i + k] == bytes[k] { k += 1 }
            if k == bytes.count { return (bytes.count, id) }
        }
        return nil
    }

    /// Tokens and mask of rendered segments, each segment tokenized on its own.
    public func encode(segments: [Segment]) throws -> EncodedSequence {
        var seq = EncodedSequence()
        for s in segments {
            let before = seq.ids.count
            try encode(s.text, appendingTo: &seq.ids)
            seq.mask.append(contentsOf: repeatElement((s.kind == .response || trainOnPrompt) ? 1 : 0, count: seq.ids.count - before))
        }
        return seq
    }

    /// Tokens and loss mask of a whole conversation (assistant contents + end-of-turn trained).
    public func encodeConversation(_ messages: [Message]) throws -> EncodedSequence {
        try encode(segments: template.render(messages))
    }

    /// The prompt for generating the next assistant turn (ends with the assistant prefix). The chat REPL and
    /// evaluation call this; stop generating at any of `stopIDs`.
    public func generationPrompt(_ messages: [Message], useDefaultSystem: Bool = true) throws -> [Int32] {
        try encode(segments: template.render(messages, useDefaultSystem: useDefaultSystem, addGenerationPrompt: true)).ids
    }

    /// Tokens of an assistant reply as it is trained (content + suffix with the end-of-turn token).
    public func encodeReply(_ content: String) throws -> [Int32] {
        try encode(content + template.assistant.suffix)
    }

    /// Text records: BOS + text + EOS, all trained.
    public func encodeText(_ text: String) throws -> EncodedSequence {
        var ids: [Int32] = []
        if tokenizer.bosID >= 0 { ids.append(Int32(tokenizer.bosID)) }
        ids += try tokenizer.encode(text)
        if tokenizer.eosID >= 0 { ids.append(Int32(tokenizer.eosID)) }
        return EncodedSequence(ids: ids, mask: Array(repeating: 1, count: ids.count))
    }
}
