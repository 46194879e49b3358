import XCTest
import FinchKernels
import FinchTrain

/// What a SIGKILL can leave in a run folder, and how resume treats it (tools/soak.sh checks the whole trainers).
final class CrashResumeTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws { tmp = try TrainerFixture.tempDir(name) }

    /// Temporaries of AtomicFile writes, folder swaps, checkpoint deletions and data packing are removed on reopen;
    /// pruning never leaves a step folder with some of its files.
    func testReopeningRemovesWhatAKillLeftHalfWritten() throws {
        let fm = FileManager.default
        let run = try RunFolder(url: tmp.appendingPathComponent("run"))
        let leftovers = [run.url.appendingPathComponent(".metrics.jsonl.tmp-123"), run.url.appendingPathComponent(".loss.svg.tmp-123"),
                         run.checkpointsURL.appendingPathComponent(".old-step-3-123-456"),
                         run.url.appendingPathComponent("data/.train.partial-123")]
        for u in leftovers {
            try fm.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: u)
        }
        _ = try RunFolder(url: run.url)
        for u in leftovers { XCTAssertFalse(fm.fileExists(atPath: u.path), u.lastPathComponent) }

        for step in [1, 2, 3] {
            try run.writeCheckpoint(step: step, keepLast: 1) { try Data("\(step)".utf8).write(to: $0.appendingPathComponent("w")) }
        }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: run.checkpointsURL.path), ["step-3"])
    }

    /// A resume keeps exactly the metrics records that existed when its checkpoint was written, even records of the
    /// checkpoint's own step logged after it (a final evaluation); with no checkpoint, --resume starts a fresh log.
    func testResumeKeepsTheMetricsOfItsCheckpoint() throws {
        let run = try RunFolder(url: tmp.appendingPathComponent("run"))
        let w = Tensor(shape: [2])
        func session() throws -> TrainingSession {
            try TrainingSession(run: run, parameters: { ["w": w] }, groups: [ParameterGroup(label: "all", names: ["w"])],
                                settings: AdamWSettings(), schedule: LRSchedule(kind: .constant, baseLR: 0.1, warmupSteps: 0, totalSteps: 4),
                                seed: 1, progress: ProgressReporter())
        }
        let a = try session()
        let g = Tensor(shape: [2]); g.ptr[0] = 1; g.ptr[1] = -1
        for _ in 0..<2 { try a.step(gradients: ["w": g]); try a.log(["loss": 1.0]) }
        try a.checkpoint()
        try a.log(["eval_loss": 0.5])   // the final evaluation, logged at the checkpoint's step after it
        XCTAssertEqual(try a.metrics.recordCount, 3)

        let b = try session()
        try b.resume(from: try XCTUnwrap(run.latestCheckpoint()).url)
        XCTAssertEqual(b.state.step, 2)
        XCTAssertEqual(try MetricsLog.read(run.metricsURL).count, 2)
        XCTAssertEqual(try b.metrics.recordCount, 2)

        try b.startFresh()
        XCTAssertEqual(try MetricsLog.read(run.metricsURL).count, 0)
    }
}
