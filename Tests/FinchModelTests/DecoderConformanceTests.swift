import XCTest
import FinchKernels
import FinchModel
import FinchConformance

/// Loads a case folder (`config.json` + `model.safetensors`) into a `Decoder` through the HF import.
func loadCaseDecoder(_ c: Case) throws -> Decoder {
    let (config, params) = try HFModelFolder.load(c.folder)
    return try Decoder(config: config, parameters: params)
}

/// `llama-forward-backward` and `gpt2-forward-backward`: logits, loss, token NLL, debug activations,
/// and the gradient of every parameter, on the padded batch of each case.
final class DecoderConformanceTests: XCTestCase {
    func testLlamaForwardBackward() throws { try runKind("llama-forward-backward") }
    func testGPT2ForwardBackward() throws { try runKind("gpt2-forward-backward") }

    func runKind(_ kind: String) throws {
        let cases = try Conformance.requireCases(kind: kind)
        for c in cases {
            let checker = Checker(c)
            do { try run(c, checker) } catch { checker.fail("\(error)") }
            XCTAssert(Conformance.report(c, checker), "\(c.name) failed")
        }
    }

    func run(_ c: Case, _ checker: Checker) throws {
        let decoder = try loadCaseDecoder(c)
        let ids2D = JSONValue.ints2D(c.inputs["input_ids"])
        let B = ids2D.count, T = ids2D.first?.count ?? 0
        let mask = c.inputs["attention_mask"].map { JSONValue.ints2D($0).flatMap { $0 } }
        let positions = c.inputs["position_ids"].map { JSONValue.ints2D($0).flatMap { $0 } }
        let labels = JSONValue.ints2D(c.inputs["labels"]).flatMap { $0 }
        let expected = try c.expectedTensors()

        decoder.forwardHidden(ids: ids2D.flatMap { $0 }, batch: B, length: T, attentionMask: mask, positionIds: positions)
        let logits = decoder.lmHead()
        let names = Set(c.expectedTensorNames)
        if names.contains("logits") { checker.check("logits", actual: logits, in: expected) }
        for name in names where name.hasPrefix("debug.") {
            guard let a = decoder.activation(String(name.dropFirst(6))) else { checker.fail("\(name): not produced"); continue }
            checker.check(name, actual: a, in: expected)
        }
        let loss = decoder.causalLMLoss(labels: labels)
        checker.check("loss", actual: [Double(loss.loss)], expected: [JSONValue.double(c.expected["loss"])])
        if let n = c.expected["num_loss_tokens"] { checker.checkExact("num_loss_tokens", actual: [loss.count], expected: [JSONValue.int(n)]) }
        if names.contains("token_nll") {
            checker.check("token_nll", actual: Tensor(shape: [B, T - 1], values: loss.tokenNLL), in: expected)
        }
        decoder.backward()
        for name in names.sorted() where name.hasPrefix("grad.") {
            guard let g = decoder.gradients[String(name.dropFirst(5))] else { checker.fail("\(name): no gradient"); continue }
            checker.check(name, actual: g, in: expected)
        }
    }
}
