import XCTest
import FinchKernels
import FinchModel

/// Packed rows: two documents in one row, with document ids and positions restarting at each document,
/// give each document the logits and gradients it gets alone (plain decoder, prompt and prefix tuning).
final class DecoderPackingTests: XCTestCase {
    func tinyConfig(_ f: Flavour) -> DecoderConfig {
        DecoderConfig(flavour: f, vocabSize: 37, hiddenSize: 32, numLayers: 2, numHeads: 4,
                      numKVHeads: f == .llama ? 2 : 4, intermediateSize: 48, maxPositions: 40)
    }

    let docA = [5, 9, 3, 7, 11]
    let docB = [2, 8, 4, 6, 10, 1, 12]
    let pads = 2
    var length: Int { docA.count + docB.count + pads }

    /// Row 0: [A | B | pad pad] packed; row 1: B alone, right-padded (a plain row in the same batch).
    func packedBatch() -> (ids: [Int], mask: [Int], positions: [Int], documents: [Int], labels: [Int]) {
        let T = length, a = docA.count, b = docB.count
        let ids = docA + docB + [0, 0] + docB + [Int](repeating: 0, count: T - b)
        let mask = [Int](repeating: 1, count: a + b) + [0, 0] + [Int](repeating: 1, count: b) + [Int](repeating: 0, count: T - b)
        let positions = Array(0..<a) + Array(0..<b) + [b, b + 1] + Array(0..<T)
        let documents = [Int](repeating: 0, count: a) + [Int](repeating: 1, count: b) + [-1, -1]
            + [Int](repeating: 0, count: b) + [Int](repeating: -1, count: T - b)
        // Labels as FinchData's Batch builds them: never on a document's first token or on pads.
        let labels = [-100] + docA.dropFirst() + [-100] + docB.dropFirst() + [-100, -100]
            + [-100] + docB.dropFirst() + [Int](repeating: -100, count: T - b)
        return (ids, mask, positions, documents, labels)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, tol: Float = 2e-4, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var worst: Float = 0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / (1e-5 + tol * max(1, abs(y)))) }
        XCTAssertLessThanOrEqual(worst, 1, "\(what): worst element uses \(worst)× its tolerance", file: file, line: line)
    }

    /// Rows `range` of logits [rows, V] (row-major).
    func rows(_ logits: [Float], _ range: Range<Int>, _ V: Int) -> [Float] { Array(logits[(range.lowerBound * V)..<(range.upperBound * V)]) }

    func testPackedLogitsEqualSeparateDocuments() {
        for f in [Flavour.gpt2, .llama] {
            let d = Decoder(config: tinyConfig(f), seed: 11), V = d.config.vocabSize, T = length
            let x = packedBatch(), a = docA.count, b = docB.count
            let packed = d.forward(ids: x.ids, batch: 2, length: T, attentionMask: x.mask, positionIds: x.positions,
                                   documentIds: x.documents).array
            let aloneA = d.forward(ids: docA, batch: 1, length: a).array
            let aloneB = d.forward(ids: docB, batch: 1, length: b).array
            assertClose(rows(packed, 0..<a, V), aloneA, "\(f) packed doc A logits")
            assertClose(rows(packed, a..<(a + b), V), aloneB, "\(f) packed doc B logits")
            assertClose(rows(packed, T..<(T + b), V), aloneB, "\(f) plain row B logits")
            // Without document ids (the old behaviour) B sees A: its logits differ.
            let leaky = d.forward(ids: x.ids, batch: 2, length: T, attentionMask: x.mask, positionIds: x.positions).array
            XCTAssertGreaterThan(zip(rows(leaky, a..<(a + b), V), aloneB).map { abs($0 - $1) }.max()!, 1e-4, "\(f) leak visible")
        }
    }

    /// The gradient of the summed loss over a packed batch equals the sum of each document's own gradient.
    func testPackedGradientsEqualSumOfSeparateDocuments() {
        for f in [Flavour.gpt2, .llama] {
            let x = packedBatch(), T = length, scale: Float = 0.25
            let packed = Decoder(config: tinyConfig(f), seed: 12)
            packed.forward(ids: x.ids, batch: 2, length: T, attentionMask: x.mask, positionIds: x.positions, documentIds: x.documents)
            let lp = packed.causalLMLoss(labels: x.labels, gradientScale: scale)
            packed.backward()

            let separate = Decoder(config: tinyConfig(f), seed: 12)
            var nll = 0.0, count = 0
            for doc in [docA, docB, docB] {
                separate.forward(ids: doc, batch: 1, length: doc.count)
                let l = separate.causalLMLoss(labels: [-100] + doc.dropFirst(), gradientScale: scale)
                nll += Double(l.loss) * Double(l.count); count += l.count
                separate.backward()   // gradients accumulate
            }
            XCTAssertEqual(lp.count, count)
            XCTAssertEqual(Double(lp.loss), nll / Double(count), accuracy: 1e-5, "\(f) loss")
            XCTAssertEqual(Set(packed.gradients.keys), Set(separate.gradients.keys))
            for (name, g) in packed.gradients {
                assertClose(g.array, separate.gradients[name]!.array, "\(f) gradient \(name)", tol: 1e-3)
            }
        }
    }

    /// Prompt and prefix tuning: virtual tokens / prefix keys are seen by every packed document, whose
    /// positions restart after them; logits and the method's gradient match separate runs.
    func testPackedPromptAndPrefixTuningEqualSeparateDocuments() {
        for f in [Flavour.gpt2, .llama] {
            for method in ["prompt", "prefix"] {
                let x = packedBatch(), T = length, a = docA.count, b = docB.count, scale: Float = 0.5
                func make() -> (Decoder, PEFTModule) {
                    let d = Decoder(config: tinyConfig(f), seed: 13)
                    let m: PEFTModule = method == "prompt" ? PromptTuningModule(virtualTokens: 3, decoder: d, seed: 4)
                                                           : PrefixTuningModule(virtualTokens: 3, decoder: d, seed: 4)
                    m.attach(to: d)
                    return (d, m)
                }
                let (d, m) = make(), V = d.config.vocabSize
                _ = m.forwardHidden(d, ids: x.ids, batch: 2, length: T, attentionMask: x.mask, positionIds: x.positions, documentIds: x.documents)
                _ = m.causalLMLoss(d, labels: x.labels, gradientScale: scale)
                let packed = m.logits(d).array
                m.backward(d)

                let (d2, m2) = make()
                var alone: [[Float]] = []
                for doc in [docA, docB, docB] {
                    _ = m2.forwardHidden(d2, ids: doc, batch: 1, length: doc.count, attentionMask: nil, positionIds: nil)
                    _ = m2.causalLMLoss(d2, labels: [-100] + doc.dropFirst(), gradientScale: scale)
                    alone.append(m2.logits(d2).array)
                    m2.backward(d2)
                }
                let tag = "\(f) \(method)"
                assertClose(rows(packed, 0..<a, V), alone[0], "\(tag) packed doc A logits")
                assertClose(rows(packed, a..<(a + b), V), alone[1], "\(tag) packed doc B logits")
                assertClose(rows(packed, T..<(T + b), V), alone[2], "\(tag) plain row B logits")
                for (name, g) in m.gradients {
                    assertClose(g.array, m2.gradients[name]!.array, "\(tag) gradient \(name)", tol: 1e-3)
                }
            }
        }
    }
}
