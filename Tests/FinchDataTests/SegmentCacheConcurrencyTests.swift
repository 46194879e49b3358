import Foundation
import XCTest
import FinchData
import FinchTokenizerKernels

/// The native encoder's word cache is shared by every encoding thread. Many distinct words encoded on four
/// threads at once (so words collide in cache slots while other threads read them) must give exactly the ids
/// of one thread encoding them alone. Runs under ThreadSanitizer in CI (tools/sanitize.sh thread).
final class SegmentCacheConcurrencyTests: XCTestCase {
    func testConcurrentEncodingEqualsSerialEncoding() throws {
        let bytes = [UInt8](TestSupport.tokenizer.modelBytes)
        // Far more distinct words than the cache's 32,768 slots, so slots are overwritten while read.
        var g = SplitMix64(seed: 11)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzé中🦜") as [Character]
        let texts: [String] = (0..<1500).map { _ in
            (0..<40).map { _ in String((0..<(2 + Int(g.next() % 9))).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] }) }
                .joined(separator: " ")
        }
        let serial = try SentencePieceEncoder(modelBytes: bytes)
        let expected = texts.map { serial.encode($0) }
        let shared = try SentencePieceEncoder(modelBytes: bytes)
        let threads = 4
        var results = [[[Int32]]](repeating: [], count: threads)
        results.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                // Each thread walks the texts from its own starting point, twice: the second pass reads hits.
                var mine: [[Int32]] = []
                for pass in 0..<2 {
                    for i in 0..<texts.count { mine.append(shared.encode(texts[(i + t * 377 + pass) % texts.count])) }
                }
                (base + t).pointee = mine
            }
        }
        for t in 0..<threads {
            for pass in 0..<2 {
                for i in 0..<texts.count {
                    let got = results[t][pass * texts.count + i], want = expected[(i + t * 377 + pass) % texts.count]
                    if got != want { return XCTFail("thread \(t) pass \(pass) text \(i): ids differ from a serial encoding") }
                }
            }
        }
    }
}
