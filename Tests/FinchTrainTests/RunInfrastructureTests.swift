import XCTest
import FinchKernels
import FinchModel
import FinchTrain
#if canImport(FoundationXML)
import FoundationXML
#endif

/// RunFolder, MetricsLog, LossCurve, TrainingState on real files in a temporary folder.
final class RunInfrastructureTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("finch-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func testCheckpointsAreAtomicAndPruned() throws {
        let run = try RunFolder(root: tmp, name: "demo")
        XCTAssertNil(run.latestCheckpoint())
        for step in [10, 20, 30, 40] {
            try run.writeCheckpoint(step: step, keepLast: 2) { dir in
                try Data("\(step)".utf8).write(to: dir.appendingPathComponent("weights.bin"))
            }
        }
        XCTAssertEqual(run.checkpoints().map(\.step), [30, 40])
        XCTAssertEqual(run.latestCheckpoint()?.step, 40)
        XCTAssertEqual(try String(contentsOf: run.latestCheckpoint()!.url.appendingPathComponent("weights.bin"), encoding: .utf8), "40")

        // A failing writer leaves neither a step folder nor temporary debris, and the old one intact.
        struct Boom: Error {}
        XCTAssertThrowsError(try run.writeCheckpoint(step: 50, keepLast: 2) { dir in
            try Data("half".utf8).write(to: dir.appendingPathComponent("weights.bin")); throw Boom()
        })
        XCTAssertEqual(run.checkpoints().map(\.step), [30, 40])
        let debris = try FileManager.default.contentsOfDirectory(atPath: run.checkpointsURL.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(debris, [])

        // best/ is replaced whole; rewriting the same step replaces it.
        try run.writeBest { try Data("a".utf8).write(to: $0.appendingPathComponent("x")) }
        try run.writeBest { try Data("b".utf8).write(to: $0.appendingPathComponent("y")) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.bestURL.path), ["y"])
        try run.writeCheckpoint(step: 40, keepLast: 0) { try Data("again".utf8).write(to: $0.appendingPathComponent("weights.bin")) }
        XCTAssertEqual(try String(contentsOf: run.checkpointURL(step: 40).appendingPathComponent("weights.bin"), encoding: .utf8), "again")

        // A crash mid-write leaves a .tmp- folder: reopening the run removes it; it is never "latest".
        let stale = run.checkpointsURL.appendingPathComponent(".tmp-step-60-123")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        XCTAssertEqual(run.latestCheckpoint()?.step, 40)
        _ = try RunFolder(url: run.url)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path))
    }

    func testMetricsLogAppendsReadsAndTruncates() throws {
        let url = tmp.appendingPathComponent("metrics.jsonl")
        do {
            let log = try MetricsLog(url: url)
            for s in 1...5 { try log.append(["step": s, "loss": 3.0 / Double(s), "lr": 1e-4]) }
            try log.append(["step": 5, "eval_loss": 1.25, "eval_ppl": Double.nan])
            XCTAssertEqual(log.chartSeries["loss"]!.map(\.x), [1, 2, 3, 4, 5])
            XCTAssertEqual(log.chartSeries["eval_loss"]!.map(\.y), [1.25])
        }
        // Reopening appends, and picks up the points already in the file.
        let reopened = try MetricsLog(url: url)
        try reopened.append(["step": 6, "loss": 0.4])
        XCTAssertEqual(reopened.chartSeries["loss"]!.map(\.x), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(LossCurve.panels(from: reopened).map { $0.series.map(\.name) }, [["train loss", "eval loss"]])
        var records = try MetricsLog.read(url)
        XCTAssertEqual(records.count, 7)
        XCTAssert(records[5]["eval_ppl"] is NSNull, "NaN is written as null")
        XCTAssertEqual(MetricsLog.series(records, key: "loss").map(\.x), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(MetricsLog.series(records, key: "eval_loss").map(\.y), [1.25])

        // A torn last line is tolerated; resume truncation drops later steps.
        let h = try FileHandle(forWritingTo: url); h.seekToEndOfFile(); h.write(Data(#"{"step": 7, "lo"#.utf8)); try h.close()
        XCTAssertEqual(try MetricsLog.read(url).count, 7)
        try MetricsLog.truncate(url, afterStep: 4)
        records = try MetricsLog.read(url)
        XCTAssertEqual(records.compactMap { ($0["step"] as? NSNumber)?.intValue }, [1, 2, 3, 4])

        try Data("{\"step\": 1}\nnot json\n{\"step\": 2}\n".utf8).write(to: url)
        XCTAssertThrowsError(try MetricsLog.read(url)) { XCTAssert("\($0)".contains("metrics.jsonl:2"), "\($0)") }
    }

    func testLossCurveSVG() throws {
        var records: [[String: Any]] = []
        for s in 1...300 { records.append(["step": s, "loss": 4 * exp(-Double(s) / 100) + 0.5]) }
        for s in stride(from: 50, through: 300, by: 50) { records.append(["step": s, "eval_loss": 4 * exp(-Double(s) / 120) + 0.7]) }
        for s in 1...300 { records.append(["step": s, "reward": Double(s) / 300, "kl": 0.01 * Double(s)]) }
        let panels = LossCurve.panels(fromMetrics: records)
        XCTAssertEqual(panels.map(\.title), ["Loss", "Mean reward", "KL to reference"])
        XCTAssertEqual(panels[0].series.map(\.name), ["train loss", "eval loss"])
        let url = tmp.appendingPathComponent("loss.svg")
        try LossCurve.write(panels, to: url)
        let svg = try String(contentsOf: url, encoding: .utf8)
        XCTAssert(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssert(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4)
        XCTAssert(svg.contains(">eval loss</text>") && svg.contains(">step</text>") && svg.contains(">300</text>"))
        // Parses as XML.
        XCTAssertNoThrow(try XMLDocument(data: Data(svg.utf8)))
        // Empty input still gives a valid picture.
        XCTAssertNoThrow(try XMLDocument(data: Data(LossCurve.svg([]).utf8)))
        XCTAssertEqual(LossCurve.niceTicks(0.37, 4.2), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(LossCurve.niceTicks(1, 300), [0, 100, 200, 300])
        XCTAssertEqual(LossCurve.niceTicks(1, 300, target: 6), [0, 50, 100, 150, 200, 250, 300])
        XCTAssertEqual(LossCurve.niceTicks(2, 2).count, 5)
    }

    func testTrainingStateRoundTripAndEarlyStopping() throws {
        struct Cursor: Codable, Equatable { var shard: Int; var offset: Int; var seed: UInt64 }
        var st = TrainingState(seed: 123)
        st.step = 42; st.epoch = 1; st.tokensSeen = 99_000; st.microBatches = 168
        st.dataCursor = try JSONValue(encoding: Cursor(shard: 3, offset: 17, seed: .max - 1))
        _ = st.rng.next()
        XCTAssertTrue(st.recordEvaluation(loss: 2.0))
        st.step = 50
        XCTAssertFalse(st.recordEvaluation(loss: 2.1))
        XCTAssertFalse(st.recordEvaluation(loss: .nan))
        XCTAssertTrue(st.shouldStopEarly(patience: 2))
        XCTAssertFalse(st.shouldStopEarly(patience: 0))
        st.extras["kl_controller"] = try JSONValue(encoding: KLController.adaptive(initial: 0.1, target: 6, horizon: 1e4))
        try st.save(to: tmp)
        var back = try TrainingState.load(from: tmp)
        XCTAssertEqual(back, st)
        XCTAssertEqual(try back.dataCursor!.decode(Cursor.self), Cursor(shard: 3, offset: 17, seed: .max - 1))
        XCTAssertEqual(back.bestStep, 42)
        XCTAssertEqual(back.rng.next(), st.rng.next())
        XCTAssertEqual(try back.extras["kl_controller"]!.decode(KLController.self).value, 0.1)
        try Data("{}".utf8).write(to: tmp.appendingPathComponent(TrainingState.fileName))
        XCTAssertThrowsError(try TrainingState.load(from: tmp)) { XCTAssert("\($0)".contains("trainer_state.json"), "\($0)") }
    }

    /// The accumulation rule on a toy per-token model: k micro-batches normalised by the step's total
    /// trained tokens give exactly the large batch's gradient; per-micro-batch means do not.
    func testGradientAccumulationEqualsLargeBatch() {
        // Loss per token: (w·x − y)², mask selects trained tokens. Gradient wrt w: 2(w·x − y)x.
        var rng = SeededRNG(seed: 1)
        let w: Float = 0.7
        let micro: [[(x: Float, y: Float, m: Int)]] = [5, 1, 9].map { n in
            (0..<n).map { _ in (rng.normal(), rng.normal(), rng.uniformFloat() < 0.7 ? 1 : 0) }
        }
        let all = micro.flatMap { $0 }
        let n = GradientAccumulation.trainedTokens(micro.map { $0.map(\.m) })
        XCTAssertEqual(n, all.filter { $0.m == 1 }.count)
        func gradSum(_ toks: [(x: Float, y: Float, m: Int)]) -> Double {
            toks.reduce(0.0) { $0 + ($1.m == 1 ? Double(2 * (w * $1.x - $1.y) * $1.x) : 0) }
        }
        let large = gradSum(all) / Double(n)
        let scale = Double(GradientAccumulation.lossScale(totalTrainedTokens: n))
        let accumulated = micro.reduce(0.0) { $0 + gradSum($1) * scale }
        XCTAssertEqual(accumulated, large, accuracy: 1e-6)
        let perMicroMean = micro.reduce(0.0) { acc, mb in
            let k = mb.filter { $0.m == 1 }.count
            return acc + (k > 0 ? gradSum(mb) / Double(k) : 0) / Double(micro.count)
        }
        XCTAssertGreaterThan(abs(perMicroMean - large), 1e-3, "the per-micro-batch mean differs (why the rule exists)")
        let ga = GradientAccumulation(steps: 3)
        XCTAssertEqual((0..<7).map { ga.isStepBoundary(microBatch: $0) }, [false, false, true, false, false, true, false])
        XCTAssertEqual(GradientAccumulation.lossScale(totalTrainedTokens: 0), 0)
    }
}
