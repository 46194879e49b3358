import XCTest
import FinchTrain

final class SeededRNGTests: XCTestCase {
    func testDeterministicAndCodable() throws {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        for _ in 0..<10 { XCTAssertEqual(a.next(), b.next()) }
        XCTAssertNotEqual(SeededRNG(seed: 1).s0, SeededRNG(seed: 2).s0)
        let data = try JSONEncoder().encode(a)
        var c = try JSONDecoder().decode(SeededRNG.self, from: data)
        for _ in 0..<100 { XCTAssertEqual(a.next(), c.next()) }
        XCTAssertThrowsError(try JSONDecoder().decode(SeededRNG.self, from: Data(#"{"state":["0","0","0","0"]}"#.utf8)))
    }

    func testDistributions() {
        var r = SeededRNG(seed: 5)
        let n = 20_000
        var sum = 0.0, sq = 0.0, umin: Float = 1, umax: Float = 0
        for _ in 0..<n {
            let x = Double(r.normal()); sum += x; sq += x * x
            let u = r.uniform(); umin = min(umin, u); umax = max(umax, u)
        }
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.03)
        XCTAssertEqual(sq / Double(n), 1, accuracy: 0.05)
        XCTAssertGreaterThanOrEqual(umin, 0); XCTAssertLessThan(umax, 1)
        for bound in [1, 7, 130] { for _ in 0..<50 { XCTAssert((0..<bound).contains(r.int(below: bound))) } }

        var mask = [Float](repeating: 0, count: 10_001)
        r.dropoutMask(&mask, count: mask.count, p: 0.25)
        let kept = mask.filter { $0 != 0 }
        XCTAssert(kept.allSatisfy { $0 == 1 / Float(0.75) })
        XCTAssertEqual(Double(kept.count) / Double(mask.count), 0.75, accuracy: 0.02)
        r.dropoutMask(&mask, count: 33, p: 0)
        XCTAssert(mask[0..<33].allSatisfy { $0 == 1 })

        var a = Array(0..<50), b = a
        var r1 = SeededRNG(seed: 9), r2 = SeededRNG(seed: 9)
        r1.shuffle(&a); r2.shuffle(&b)
        XCTAssertEqual(a, b); XCTAssertEqual(a.sorted(), Array(0..<50)); XCTAssertNotEqual(a, Array(0..<50))
        var p = SeededRNG(seed: 1)
        var s1 = p.split(stream: 1), s2 = p.split(stream: 1)
        XCTAssertNotEqual(s1.next(), s2.next())
    }
}
