import Foundation
import XCTest
import FinchModel
import FinchTrain

/// The main job at CI size: runs `tools/demo.sh` with `FINCH_DEMO_SCALE=ci` and the built `finch` binary in a temp
/// folder, then checks that every stage produced its outputs and that they reload.
final class PipelineTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `finch` executable next to the test bundle (same build folder).
    static func finchBinary() -> URL? {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                          Bundle.main.bundleURL, Bundle(for: PipelineTests.self).bundleURL.deletingLastPathComponent()]
        for dir in candidates {
            for d in [dir, dir.deletingLastPathComponent()] {
                let u = d.appendingPathComponent("finch")
                if FileManager.default.isExecutableFile(atPath: u.path) { return u }
            }
        }
        return nil
    }

    func testCISizedPipelineProducesEveryStageAndTheyReload() throws {
        guard let finch = Self.finchBinary() else { throw XCTSkip("no built finch binary next to the tests (swift build first)") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("finch-pipeline-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: out) }
        var env = ProcessInfo.processInfo.environment
        env["FINCH_DEMO_SCALE"] = "ci"; env["FINCH_BIN"] = finch.path; env["FINCH_DEMO_OUT"] = out.path; env["FINCH_NO_CHAT"] = "1"
        let run = try ToolProcess.run("/bin/bash", [Self.repoRoot.appendingPathComponent("tools/demo.sh").path],
                                      in: Self.repoRoot, environment: env)
        XCTAssertEqual(run.status, 0, "tools/demo.sh (ci) failed:\n\(run.output.suffix(3000))")
        guard run.status == 0 else { return }

        // Every model folder reloads.
        for folder in ["base/final", "sft/final/merged", "scratch/final", "reward/final", "ppo/final"] {
            XCTAssertNoThrow(try HFModelFolder.read(out.appendingPathComponent(folder)), folder)
        }
        XCTAssertNoThrow(try EvalModel(folder: out.appendingPathComponent("sft/final")), "the SFT adapter loads over its base")
        let reward = try HFModelFolder.read(out.appendingPathComponent("reward/final"))
        XCTAssertEqual(reward.config.numLabels, 1)
        // The comparison covers the four models with the asked metrics.
        let cmp = try EvalComparison.read(out.appendingPathComponent("eval.json"))
        XCTAssertEqual(cmp.models.map(\.name), ["scratch", "base-4shot", "sft", "ppo"])
        for m in cmp.models { XCTAssertNotNil(m.exactMatch, m.name); XCTAssertNotNil(m.meanReward, m.name) }
        XCTAssertNotNil(cmp.models[3].klToReference)
        XCTAssertNotNil(cmp.models[2].trainableParameters)
        for file in ["report.md", "eval.md", "eval.svg", "timings.txt", "base/loss.svg", "sft/loss.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), file)
        }
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("sft") && report.contains("Margins"))
        XCTAssertTrue(report.contains("## Reply form") && report.contains("- ppo: "), "report.md counts sentence replies per model")
    }
}
