import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// `finch classify` on a tiny random model: the head learns a separable toy task; the folder reloads.
final class ClassifyTests: XCTestCase {
    static func data(in dir: URL, name: String, n: Int) throws -> URL {
        let u = dir.appendingPathComponent(name)
        let lines = (0..<n).map { i -> String in
            let c = TrainerFixture.colours[i % 4], t = TrainerFixture.things[(i / 4) % 8]
            return "{\"text\": \"the \(c) \(t) sat on the mat.\", \"label\": \"\(c)\"}"
        }
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func run(method: String) throws -> ClassifyResult {
        let dir = try TrainerFixture.tempDir("classify\(method)")
        var o = ClassifyOptions(model: try EvalTests.modelFolder().path, data: try Self.data(in: dir, name: "train.jsonl", n: 64).path,
                                labels: Array(TrainerFixture.colours.prefix(4)), out: dir.appendingPathComponent("run").path)
        o.evalData = try Self.data(in: dir, name: "eval.jsonl", n: 16).path
        o.method = method; o.maxSteps = 80; o.batchSize = 8; o.lr = method == "freeze" ? 3e-2 : 2e-2; o.warmup = 0
        let r = try ClassifyJob.run(ClassifyConfig(classify: o))
        let folder = try HFModelFolder.read(dir.appendingPathComponent("run/final"))
        XCTAssertEqual(folder.config.numLabels, 4)
        XCTAssertEqual(folder.parameters["score.weight"]?.shape, [4, folder.config.hiddenSize])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/classify.json").path))
        return r
    }

    func testLoRAClassifierLearnsAndReports() throws {
        let r = try run(method: "lora")
        XCTAssertLessThan(r.lastLoss!, r.firstLoss!)
        XCTAssertEqual(r.report?.classes.count, 4)
        XCTAssertGreaterThan(r.report!.accuracy, 0.5)
    }

    func testFreezeTrainsTheHeadOnly() throws {
        let r = try run(method: "freeze")
        XCTAssertEqual(r.trainableParameters, 4 * TrainerFixture.config().hiddenSize)
        XCTAssertLessThan(r.lastLoss!, r.firstLoss!)
    }
}
