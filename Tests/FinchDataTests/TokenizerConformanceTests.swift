import FinchConformance
import Foundation
import XCTest
import FinchData

/// `sentencepiece` conformance: every model of every case, every test string: ids, pieces, decoded text
/// (and normalized text and the vocabulary listing where the case gives them).
final class TokenizerConformanceTests: XCTestCase {
    func testSentencePieceConformance() throws {
        try Conformance.run(kind: "sentencepiece") { c, checker in
            let models = c.json["models"]?.object ?? [:]
            if models.isEmpty { checker.fail("case.json has no models") }
            for (name, value) in models.sorted(by: { $0.key < $1.key }) {
                guard let m = value.object, let file = m["model_file"]?.string else {
                    checker.fail("\(name): no model_file"); continue
                }
                let tok: SentencePieceTokenizer
                do { tok = try SentencePieceTokenizer(contentsOf: c.file(file)) } catch { checker.fail("\(error)"); continue }
                if let n = m["piece_size"]?.int { checker.checkExact("\(name).piece_size", actual: [tok.vocabSize], expected: [n]) }
                for key in ["unk_id", "bos_id", "eos_id", "pad_id"] {
                    guard let want = m[key]?.int else { continue }
                    let got = ["unk_id": tok.unkID, "bos_id": tok.bosID, "eos_id": tok.eosID, "pad_id": tok.padID][key]!
                    checker.checkExact("\(name).\(key)", actual: [got], expected: [want])
                }
                for (i, t) in (m["tests"]?.array ?? []).enumerated() {
                    let text = t["text"]?.string ?? ""
                    let label = "\(name).tests[\(i)]"
                    do {
                        let ids = try tok.encode(text).map(Int.init)
                        checker.checkExact("\(label).ids", actual: ids, expected: t["ids"]?.ints ?? [])
                        checker.checkExact("\(label).pieces", actual: try tok.encodePieces(text), expected: t["pieces"]?.strings ?? [])
                        if let d = t["decoded"]?.string {
                            checker.checkExact("\(label).decoded", actual: [try tok.decode(ids)], expected: [d])
                        }
                        if let n = t["normalized"]?.string {
                            checker.checkExact("\(label).normalized", actual: [try tok.normalize(text)], expected: [n])
                        }
                    } catch { checker.fail("\(label): \(error)") }
                }
                if let vocab = m["vocab"]?.array {
                    let listing = tok.vocabulary
                    checker.checkExact("\(name).vocab.pieces", actual: listing.map(\.piece), expected: vocab.map { $0["piece"]?.string ?? "" })
                    checker.checkExact("\(name).vocab.types", actual: listing.map(\.type.rawValue), expected: vocab.map { $0["type"]?.string ?? "" })
                    // Scores have their own tolerance entry (tolerance.score.abs), not the case default.
                    let tol = c.json["tolerance"]?["score"]?["abs"]?.double ?? 0
                    for (e, v) in zip(listing, vocab) {
                        guard let want = v["score"]?.double else { checker.fail("\(name).vocab[\(e.id)]: no score"); continue }
                        if Swift.abs(Double(e.score) - want) > tol {
                            checker.fail("\(name).vocab[\(e.id)].score: got \(e.score), expected \(want)")
                        }
                    }
                }
                if let enc = m["corpus_encoding"]?.object, let total = enc["total_ids"]?.int,
                   let corpus = try? String(contentsOf: c.file("corpus.txt"), encoding: .utf8) {
                    var lines = corpus.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    if lines.last == "" { lines.removeLast() }
                    var sum = 0
                    for l in lines { sum += (try? tok.encode(l).count) ?? 0 }
                    checker.checkExact("\(name).corpus_encoding.total_ids", actual: [sum], expected: [total])
                    if let n = enc["num_lines"]?.int { checker.checkExact("\(name).corpus_encoding.num_lines", actual: [lines.count], expected: [n]) }
                }
            }
        }
    }
}
