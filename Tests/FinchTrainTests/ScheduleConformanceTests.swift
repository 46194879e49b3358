import XCTest
import FinchConformance
import FinchTrain

final class ScheduleConformanceTests: XCTestCase {
    /// `lr-schedules`: every schedule listed under `expected`, hyper-parameters from case.json.
    func testLRSchedulesConformance() throws {
        try Conformance.run(kind: "lr-schedules") { c, checker in
            let hp = c.hyperparameters
            let base = try hp.required("base_lr", \.double)
            let warmup = try hp.required("num_warmup_steps", \.int)
            let total = try hp.required("num_training_steps", \.int)
            let cycles = try hp.optional("num_cycles", \.double) ?? 0.5
            for name in c.expected.keys.sorted() {
                guard let kind = LRSchedule.Kind(name: name) else { checker.fail("unknown schedule '\(name)'"); continue }
                let expected = try c.expected.required(name, \.doubles)
                let s = LRSchedule(kind: kind, baseLR: base, warmupSteps: warmup, totalSteps: total, numCycles: cycles)
                checker.check(name, actual: (0..<expected.count).map { s.lr(at: $0) }, expected: expected)
            }
        }
    }

    func testWarmupAndConstant() {
        let s = LRSchedule(kind: .constant, baseLR: 1e-3, warmupSteps: 4, totalSteps: 10)
        XCTAssertEqual(s.lr(at: 0), 0)
        XCTAssertEqual(s.lr(at: 2), 5e-4, accuracy: 1e-18)
        XCTAssertEqual(s.lr(at: 4), 1e-3)
        XCTAssertEqual(s.lr(at: 1000), 1e-3)
        let noWarm = LRSchedule(kind: .cosine, baseLR: 2, warmupSteps: 0, totalSteps: 10)
        XCTAssertEqual(noWarm.lr(at: 0), 2)
        XCTAssertEqual(noWarm.lr(at: 5), 1, accuracy: 1e-15)
        XCTAssertEqual(noWarm.lr(at: 10), 0, accuracy: 1e-15)
        XCTAssertEqual(LRSchedule(kind: .linear, baseLR: 1, totalSteps: 10).lr(at: 20), 0)   // clamped past the end
        XCTAssertEqual(LRSchedule.Kind(name: "constant_with_warmup"), .constant)
        XCTAssertNil(LRSchedule.Kind(name: "exp"))
    }
}
