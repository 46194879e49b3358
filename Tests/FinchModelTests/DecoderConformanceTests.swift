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
    func testLlamaForwardBackward() throws { try Conformance.run(kind: "llama-forward-backward", run) }
    func testGPT2ForwardBackward() throws { try Conformance.run(kind: "gpt2-forward-backward", run) }

    func run(_ c: Case, _ checker: Checker) throws {
        let decoder = try loadCaseDecoder(c)
        let ids2D = try c.inputs.required("input_ids", \.intRows)
        let B = ids2D.count, T = ids2D.first?.count ?? 0
        let mask = try c.inputs.optional("attention_mask", \.intRows)?.flatMap { $0 }
        let positions = try c.inputs.optional("position_ids", \.intRows)?.flatMap { $0 }
        let labels = try c.inputs.required("labels", \.intRows).flatMap { $0 }
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
        checker.check("loss", actual: [Double(loss.loss)], expected: [try c.expected.required("loss", \.double)])
        if let n = try c.expected.optional("num_loss_tokens", \.int) { checker.checkExact("num_loss_tokens", actual: [loss.count], expected: [n]) }
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
