import XCTest
import FinchModel

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

    /// The exact numbers of every helper for seed 42, as Finch has always drawn them (FinchModel's former
    /// `FinchRNG` and FinchTrain's `SeededRNG` were the same stream with different helpers): initial weights,
    /// sampling, data order and checkpoints depend on them.
    func testStreamValuesForAFixedSeed() throws {
        var r = SeededRNG(seed: 42)
        XCTAssertEqual((0..<4).map { _ in r.next() },
                       [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1, 0xecb8_ad47_03b3_60a1])
        var w = r   // FinchModel's helpers from here on
        XCTAssertEqual((0..<3).map { _ in w.uniformDouble().bitPattern },
                       [4607108595022847371, 4605108416239644458, 4604653724871904443])
        XCTAssertEqual((0..<3).map { _ in w.weightNormal().bitPattern }, [1025949336, 3202016568, 1056809457])
        XCTAssertEqual((0..<2).flatMap { _ -> [UInt32] in let p = w.fastNormalPair(); return [p.0.bitPattern, p.1.bitPattern] },
                       [3199889589, 3216712465, 3200397289, 3199143549])
        // The trainers' helpers from the same point.
        XCTAssertEqual((0..<3).map { _ in r.uniformDouble().bitPattern },
                       [4607108595022847371, 4605108416239644458, 4604653724871904443])
        XCTAssertEqual((0..<3).map { _ in r.uniformFloat().bitPattern }, [1062836775, 1061349742, 1058362977])
        XCTAssertEqual((0..<3).map { _ in r.normal().bitPattern }, [3194113074, 3197366886, 1058540072])
        XCTAssertEqual((0..<5).map { _ in r.int(below: 1000) }, [616, 851, 707, 707, 92])
        var a = Array(0..<10); r.shuffle(&a)
        XCTAssertEqual(a, [5, 0, 7, 8, 9, 6, 2, 4, 3, 1])
        var mask = [Float](repeating: 9, count: 8); r.dropoutMask(&mask, count: 8, p: 0.5)
        XCTAssertEqual(mask, [0, 2, 2, 2, 2, 2, 2, 0])
        var s = r.split(stream: 3)
        XCTAssertEqual(s.next(), 0x7601_622b_4208_33f9)
        XCTAssertEqual(String(decoding: try JSONEncoder().encode(r), as: UTF8.self),
                       #"{"state":["4be7fbd41f99245b","c7c6cb267baf6c72","32ff79e3b5111dd3","137fc92d603dd91a"]}"#)

        // A fingerprint of long streams of every floating-point helper over several seeds.
        var h: UInt64 = 0
        func mix(_ x: UInt64) { h = (h ^ x) &* 0x100_0000_01b3 }
        for seed in [UInt64(0), 1, 7, 0xdead_beef, .max] {
            var f = SeededRNG(seed: seed)
            for _ in 0..<100_000 {
                mix(UInt64(f.weightNormal().bitPattern))
                let p = f.fastNormalPair(); mix(UInt64(p.0.bitPattern)); mix(UInt64(p.1.bitPattern))
                mix(f.uniformDouble().bitPattern)
            }
            var g = SeededRNG(seed: seed)
            for _ in 0..<100_000 {
                mix(UInt64(g.normal().bitPattern)); mix(UInt64(g.uniformFloat().bitPattern))
                mix(g.uniformDouble().bitPattern); mix(UInt64(g.int(below: 97)))
            }
        }
        XCTAssertEqual(String(h, radix: 16), "1643eb8cbf8f7695")
    }

    /// Codable mid-stream: a decoded copy continues exactly; a checkpoint written before the merge still reads.
    func testCodableRoundTripMidStream() throws {
        var a = SeededRNG(seed: 2024)
        for _ in 0..<37 { _ = a.next() }
        _ = a.normal(); _ = a.fastNormalPair()
        var b = try JSONDecoder().decode(SeededRNG.self, from: JSONEncoder().encode(a))
        XCTAssertEqual(a, b)
        for _ in 0..<50 { XCTAssertEqual(a.weightNormal().bitPattern, b.weightNormal().bitPattern); XCTAssertEqual(a.next(), b.next()) }

        // trainer_state.json's `rng` as checkpoints on disk hold it.
        let old = Data(#"{"state" : ["4be7fbd41f99245b", "c7c6cb267baf6c72", "32ff79e3b5111dd3", "137fc92d603dd91a"]}"#.utf8)
        var c = try JSONDecoder().decode(SeededRNG.self, from: old)
        XCTAssertEqual([c.s0, c.s1, c.s2, c.s3], [0x4be7_fbd4_1f99_245b, 0xc7c6_cb26_7baf_6c72, 0x32ff_79e3_b511_1dd3, 0x137f_c92d_603d_d91a])
        XCTAssertEqual((0..<3).map { _ in c.next() }, [0xf8da_e1de_eb08_090b, 0x896c_10e1_f50e_7c45, 0xb35f_3c33_3642_36ad])
    }

    func testDistributions() {
        var r = SeededRNG(seed: 5)
        let n = 20_000
        var sum = 0.0, sq = 0.0, umin: Float = 1, umax: Float = 0
        for _ in 0..<n {
            let x = Double(r.normal()); sum += x; sq += x * x
            let u = r.uniformFloat(); umin = min(umin, u); umax = max(umax, u)
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
