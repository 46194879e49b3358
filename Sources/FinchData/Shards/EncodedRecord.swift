import Foundation

/// A tokenized record before it is cut to the length limit and placed into entries.
enum Encoded {
    case sequence(EncodedSequence, checkEndOfTurn: Bool)
    case text(EncodedSequence)
    case preference(prompt: [Int32], chosen: [Int32], rejected: [Int32])
    case prompt([Int32])

    /// Token length before truncation (prompt + chosen for preferences).
    var length: Int {
        switch self {
        case .sequence(let s, _), .text(let s): return s.count
        case .preference(let p, let c, _): return p.count + c.count
        case .prompt(let p): return p.count
        }
    }

    /// The record's parts as single-document examples (documents' record/source/line filled in later),
    /// truncated or split to `maxLength`, and validated.
    /// Whether `length` over the limit makes the record over-long (plain text is split instead).
    var isRecordWithLength: Bool { if case .text = self { return false } else { return true } }

    /// `allowCutEnd`: the user chose `--overlong truncate`, so a sequence whose end-of-turn token is cut off is kept.
    func documents(maxLength L: Int, endOfTurn: Int?, location: SourceLocation, template: String?, allowCutEnd: Bool = false) throws
        -> (parts: [Example], truncated: Bool) {
        func doc(_ ids: [Int32], _ mask: [UInt8]) -> Example {
            Example(ids: ids, mask: mask, documents: [DocumentInfo(length: ids.count, record: 0, source: 0, line: location.line)])
        }
        switch self {
        case .text(let s):
            // Long text is split into several sequences rather than truncated.
            return (stride(from: 0, to: s.count, by: L).map { doc(Array(s.ids[$0..<min(s.count, $0 + L)]), Array(s.mask[$0..<min(s.count, $0 + L)])) }, false)
        case .sequence(var s, let checkEOT):
            let cut = s.count > L
            if cut { s.ids.removeLast(s.count - L); s.mask.removeLast(s.mask.count - L) }
            guard s.trainedCount > 0 else {
                throw RecordError(location, "empty loss mask: no trained token\(cut ? " left after truncating to \(L) tokens" : "") (template \(template ?? "-"))")
            }
            if checkEOT, !(cut && allowCutEnd), let eot = endOfTurn, !zip(s.ids, s.mask).contains(where: { $0.0 == Int32(eot) && $0.1 == 1 }) {
                throw RecordError(location, "end-of-turn token (id \(eot)) is not trained\(cut ? " after truncating to \(L) tokens" : ""); the model would never learn to stop")
            }
            return ([doc(s.ids, s.mask)], cut)
        case .preference(var p, var c, var r):
            var cut = false
            let reply = max(c.count, r.count)
            if p.count + reply > L {
                cut = true
                let replyRoom = max(L / 2, L - p.count)
                if c.count > replyRoom { c.removeLast(c.count - replyRoom) }
                if r.count > replyRoom { r.removeLast(r.count - replyRoom) }
                let promptRoom = L - max(c.count, r.count)
                if p.count > promptRoom { p.removeFirst(p.count - promptRoom) }   // keep the end of the prompt
            }
            guard !p.isEmpty, !c.isEmpty, !r.isEmpty else { throw RecordError(location, "empty prompt or reply after tokenizing") }
            return ([doc(p, Array(repeating: 0, count: p.count)), doc(c, Array(repeating: 1, count: c.count)),
                     doc(r, Array(repeating: 1, count: r.count))], cut)
        case .prompt(var p):
            let cut = p.count > L
            if cut { p.removeFirst(p.count - L) }
            return ([doc(p, Array(repeating: 0, count: p.count))], cut)
        }
    }
}

extension DatasetPacker {
    static func encode(_ r: Record, encoder: ChatEncoder?, textEncoder: ChatEncoder, maxLength: Int) throws -> Encoded {
        switch r.body {
        case .text(let t):
            return .text(try textEncoder.encodeText(t))
        case .chat(let m):
            return .sequence(try encoder!.encodeConversation(m), checkEndOfTurn: true)
        case .preference(let p, let c, let rej):
            return .preference(prompt: try encoder!.generationPrompt(p), chosen: try encoder!.encodeReply(c), rejected: try encoder!.encodeReply(rej))
        case .prompt(let p):
            return .prompt(try encoder!.generationPrompt(p))
        }
    }
}

/// Order-preserving parallel map over `threads` workers.
func parallelMap<T, R>(_ items: [T], threads: Int, _ f: (T) throws -> R) throws -> [R] {
    try parallelMapWithCodec(items, threads: threads, level: 0) { _, x in try f(x) }
}

/// Parallel map where each worker owns a zstd codec. Workers take chunks of items from a shared counter, so a
/// worker the OS schedules less (a busy machine) does less, instead of the others waiting for its fixed share.
func parallelMapWithCodec<T, R>(_ items: [T], threads: Int, level: Int32, _ f: (ZstdCodec, T) throws -> R) throws -> [R] {
    let n = items.count
    if n == 0 { return [] }
    let workers = max(1, min(threads, n))
    let chunk = max(1, min(64, n / (8 * workers)))
    var results = [R?](repeating: nil, count: n)
    var firstError: Error? = nil
    var next = 0
    let lock = NSLock()
    results.withUnsafeMutableBufferPointer { out in
        let outPtr = out
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let codec = ZstdCodec(level: level == 0 ? 3 : level)
            while true {
                lock.lock()
                let start = firstError == nil ? next : n
                next = start + chunk
                lock.unlock()
                if start >= n { return }
                for i in start..<min(n, start + chunk) {
                    do { outPtr[i] = try f(codec, items[i]) } catch {
                        lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                        return
                    }
                }
            }
        }
    }
    if let firstError { throw firstError }
    return results.map { $0! }
}
