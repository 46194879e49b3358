import Foundation
import XCTest
import FinchTrain

/// DPO's variants (sigmoid, hinge, robust, APO-zero, SimPO) and KTO (kto, apo_zero_unpaired) against TRL on fixed
/// sequence log-probabilities: losses, implicit rewards and the gradients torch's autograd gives, to 1e-6.
/// Vectors: `python3 tools/vectors/preference_loss_vectors.py` (run by `tools/test_assets.sh`).
final class PreferenceLossVectorTests: XCTestCase {
    static let file: URL = {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = (env?.isEmpty == false) ? URL(fileURLWithPath: env!)
            : FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return base.appendingPathComponent("preference_loss_vectors/cases.json")
    }()

    struct Vectors: Decodable {
        struct DPO: Decodable {
            let variant: String, beta: Double, label_smoothing: Double, simpo_gamma: Double
            let policy_chosen: [Float], policy_rejected: [Float], reference_chosen: [Float], reference_rejected: [Float]
            let chosen_lengths: [Int], rejected_lengths: [Int]
            let loss: Double, losses: [Double], chosen_rewards: [Double], rejected_rewards: [Double]
            let grad_chosen: [Double], grad_rejected: [Double]
        }
        struct KTO: Decodable {
            let variant: String, beta: Double, desirable_weight: Double, undesirable_weight: Double
            let policy: [Float], reference: [Float], desirable: [Bool], kl_policy: [Float], kl_reference: [Float]
            let loss: Double, losses: [Double], kl: Double, grad: [Double]
        }
        let trl_version: String
        let dpo: [DPO]
        let kto: [KTO]
    }

    func vectors() throws -> Vectors {
        guard let data = try? Data(contentsOf: Self.file) else {
            XCTFail("missing \(Self.file.path): run python3 tools/vectors/preference_loss_vectors.py (tools/test_assets.sh)")
            throw XCTSkip("no vectors")
        }
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    /// The vectors' inputs are Float32 log-probs (as Finch's are); TRL computed in float64 from the same values.
    func close(_ a: [Float], _ b: [Double], _ what: String, tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(Double(x), y, accuracy: tol * max(1, abs(y)), what, file: file, line: line)
        }
    }

    func testDPOVariantsMatchTRL() throws {
        let v = try vectors()
        var seen = Set<String>()
        for (i, c) in v.dpo.enumerated() {
            let variant = try XCTUnwrap(DPOLoss.Variant(rawValue: c.variant), c.variant)
            seen.insert(c.variant)
            let r = DPOLoss.compute(policyChosen: c.policy_chosen, policyRejected: c.policy_rejected,
                                    referenceChosen: variant.usesReference ? c.reference_chosen : [],
                                    referenceRejected: variant.usesReference ? c.reference_rejected : [],
                                    beta: c.beta, variant: variant, labelSmoothing: c.label_smoothing,
                                    chosenLengths: c.chosen_lengths, rejectedLengths: c.rejected_lengths, simpoGamma: c.simpo_gamma)
            let name = "dpo case \(i) (\(c.variant), β \(c.beta), ε \(c.label_smoothing))"
            XCTAssertEqual(r.loss, c.loss, accuracy: 1e-6 * max(1, abs(c.loss)), name)
            close(r.losses, c.losses, name + " losses")
            close(r.chosenRewards, c.chosen_rewards, name + " chosen rewards")
            close(r.rejectedRewards, c.rejected_rewards, name + " rejected rewards")
            close(r.gradPolicyChosen, c.grad_chosen, name + " d/dchosen")
            close(r.gradPolicyRejected, c.grad_rejected, name + " d/drejected")
        }
        XCTAssertEqual(seen, ["sigmoid", "hinge", "robust", "apo_zero", "simpo"], "TRL \(v.trl_version)")
    }

    func testKTOMatchesTRL() throws {
        let v = try vectors()
        XCTAssertFalse(v.kto.isEmpty)
        for (i, c) in v.kto.enumerated() {
            let variant = try XCTUnwrap(KTOLoss.Variant(rawValue: c.variant), c.variant)
            let r = KTOLoss.compute(policy: c.policy, reference: c.reference, desirable: c.desirable, klPolicy: c.kl_policy,
                                    klReference: c.kl_reference, beta: c.beta, desirableWeight: c.desirable_weight,
                                    undesirableWeight: c.undesirable_weight, variant: variant)
            let name = "kto case \(i) (\(c.variant), β \(c.beta))"
            XCTAssertEqual(r.loss, c.loss, accuracy: 1e-6 * max(1, abs(c.loss)), name)
            if variant.usesReferencePoint { XCTAssertEqual(r.kl, c.kl, accuracy: 1e-5, name + " kl") }
            close(r.losses, c.losses, name + " losses")
            close(r.gradPolicy, c.grad, name + " gradient")
        }
    }
}
