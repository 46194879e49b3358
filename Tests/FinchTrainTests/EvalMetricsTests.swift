import Foundation
import XCTest
import FinchTrain

/// Every expected value below is worked out by hand in the comment next to it.
final class EvalMetricsTests: XCTestCase {

    func testExactMatchNormalises() {
        XCTAssertTrue(EvalMetrics.exactMatch("  Paris. ", "paris"))
        XCTAssertTrue(EvalMetrics.exactMatch("New   York", "new york."))
        XCTAssertTrue(EvalMetrics.exactMatch("3, 5, 9", "3, 5, 9"))
        XCTAssertFalse(EvalMetrics.exactMatch("4", "5"))
        XCTAssertFalse(EvalMetrics.exactMatch("the answer is 4", "4"))
        XCTAssertEqual(EvalMetrics.normalizeAnswer("\tHello \n World.."), "hello world")
        // Case matters for the letter-case tasks only.
        XCTAssertFalse(EvalMetrics.exactMatch("Nest", "NEST", task: "uppercase"))
        XCTAssertTrue(EvalMetrics.exactMatch("NEST.", "NEST", task: "uppercase"))
        XCTAssertTrue(EvalMetrics.exactMatch("Nest", "NEST", task: "reverse_word"))
        XCTAssertFalse(EvalMetrics.exactMatch("follow red", "Follow Red", caseSensitive: true))
    }

    func testTokenF1() {
        // pred tokens [cat, sat] ("The" is an article), ref [cat, sat, down] ("a" dropped):
        // P = 2/2, R = 2/3, F1 = 2·1·(2/3)/(1 + 2/3) = 0.8
        XCTAssertEqual(EvalMetrics.tokenF1("The cat sat.", "a cat sat down"), 0.8, accuracy: 1e-12)
        XCTAssertEqual(EvalMetrics.tokenF1("blue", "red"), 0)
        XCTAssertEqual(EvalMetrics.tokenF1("", ""), 1)
        XCTAssertEqual(EvalMetrics.tokenF1("x", ""), 0)
        // Repeated tokens are clipped: "b b b" vs "b": common 1, P = 1/3, R = 1, F1 = 2·(1/3)/(4/3) = 0.5
        XCTAssertEqual(EvalMetrics.tokenF1("b b b", "b"), 0.5, accuracy: 1e-12)
    }

    func testWordTokensSplitPunctuation() {
        XCTAssertEqual(EvalMetrics.wordTokens("Hi, cat."), ["Hi", ",", "cat", "."])
    }

    func testSentenceBLEUByHand() {
        // sacrebleu.sentence_bleu defaults: exp smoothing, effective order.
        // hyp "the cat sat on the mat", ref "the cat is on the mat" (6 tokens each, BP = 1)
        // 1-grams: the×2, cat, on, mat match → 5/6
        // 2-grams: "the cat", "on the", "the mat" → 3/5
        // 3-grams: "on the mat" → 1/4
        // 4-grams: none of 3 → exp smoothing, first order without a match: 1/(2·3) = 1/6
        // BLEU = (5/6 · 3/5 · 1/4 · 1/6)^(1/4) = (1/48)^(1/4)
        let bleu = EvalMetrics.sentenceBLEU("the cat sat on the mat", "the cat is on the mat")
        XCTAssertEqual(bleu, pow(1.0 / 48.0, 0.25), accuracy: 1e-12)
        XCTAssertEqual(EvalMetrics.sentenceBLEU("a b c d", "a b c d"), 1, accuracy: 1e-12)
        XCTAssertEqual(EvalMetrics.sentenceBLEU("", "a b"), 0)
    }

    func testCorpusBLEUByHand() {
        // Pair 1 as above: matches/totals per order 5/6, 3/5, 1/4, 0/3; lengths 6 vs 6.
        // Pair 2 "a b c d e" vs "a b c d e f g": 5/5, 4/4, 3/3, 2/2; lengths 5 vs 7.
        // Corpus: p1 = 10/11, p2 = 7/9, p3 = 4/7, p4 = 2/5, c = 11, r = 13 → BP = exp(1 − 13/11).
        // Product of precisions = 10/11 · 7/9 · 4/7 · 2/5 = 16/99.
        let bleu = EvalMetrics.corpusBLEU(hypotheses: ["the cat sat on the mat", "a b c d e"],
                                          references: ["the cat is on the mat", "a b c d e f g"])
        XCTAssertEqual(bleu, exp(1 - 13.0 / 11.0) * pow(16.0 / 99.0, 0.25), accuracy: 1e-12)
        // Pair 1 alone has no 4-gram match: sacrebleu's exp smoothing gives p4 = 1/(2·3), so
        // BLEU = (5/6 · 3/5 · 1/4 · 1/6)^(1/4) = (1/48)^(1/4).
        XCTAssertEqual(EvalMetrics.corpusBLEU(hypotheses: ["the cat sat on the mat"],
                                              references: ["the cat is on the mat"]), pow(1.0 / 48.0, 0.25), accuracy: 1e-12)
        // Pair 2 alone: all precisions 1, BP = exp(1 − 7/5).
        XCTAssertEqual(EvalMetrics.corpusBLEU(hypotheses: ["a b c d e"], references: ["a b c d e f g"]),
                       exp(-0.4), accuracy: 1e-12)
    }

    func testRougeL() {
        // LCS of "the cat sat on the mat" / "the cat is on the mat" = "the cat on the mat" = 5: P = R = F = 5/6.
        XCTAssertEqual(EvalMetrics.rougeL("the cat sat on the mat", "the cat is on the mat"), 5.0 / 6.0, accuracy: 1e-12)
        // Lin (2004): "police killed the gunman" vs "the gunman killed police": LCS = 2 of 4 → F = 0.5.
        XCTAssertEqual(EvalMetrics.rougeL("police killed the gunman", "the gunman killed police"), 0.5, accuracy: 1e-12)
        // Different lengths: pred "A B" vs ref "a x b y": LCS 2, P = 1, R = 1/2, F = 2/3.
        XCTAssertEqual(EvalMetrics.rougeL("A B", "a x b y"), 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(EvalMetrics.rougeL("", "a"), 0)
    }

    func testClassificationReport() {
        // gold  a a b b c
        // pred  a b b b a
        // a: tp 1, predicted 2, actual 2 → P .5, R .5, F .5
        // b: tp 2, predicted 3, actual 2 → P 2/3, R 1, F .8
        // c: tp 0, predicted 0, actual 1 → 0, 0, 0
        let report = ClassificationReport(predictions: ["a", "b", "b", "b", "a"], gold: ["a", "a", "b", "b", "c"])
        XCTAssertEqual(report.classes, ["a", "b", "c"])
        XCTAssertEqual(report.accuracy, 0.6, accuracy: 1e-12)
        XCTAssertEqual(report.perClass["a"]!.f1, 0.5, accuracy: 1e-12)
        XCTAssertEqual(report.perClass["b"]!.precision, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(report.perClass["b"]!.recall, 1, accuracy: 1e-12)
        XCTAssertEqual(report.perClass["b"]!.f1, 0.8, accuracy: 1e-12)
        XCTAssertEqual(report.perClass["c"]!, ClassScores(precision: 0, recall: 0, f1: 0, support: 1))
        XCTAssertEqual(report.macroF1, 1.3 / 3.0, accuracy: 1e-12)
    }

    func testPerplexityAndSummaryStatistics() {
        XCTAssertEqual(EvalMetrics.perplexity(summedNLL: 4 * log(2.0), tokenCount: 4), 2, accuracy: 1e-12)
        XCTAssertTrue(EvalMetrics.perplexity(summedNLL: 1, tokenCount: 0).isNaN)
        XCTAssertEqual(EvalMetrics.mean([1, 2, 3, 4]), 2.5)
        // sample variance (2.25 + .25 + .25 + 2.25)/3 = 5/3; stderr = sqrt(5/3 / 4)
        XCTAssertEqual(EvalMetrics.standardError([1, 2, 3, 4]), (5.0 / 12.0).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(EvalMetrics.standardError([7]), 0)
    }

    func testBarChartWritesSVG() throws {
        let svg = BarChart.svg(title: "Held-out <eval>", groups: ["exact match", "reward"],
                               series: [BarChart.Series(name: "SFT", values: [0.4, 0.5]),
                                        BarChart.Series(name: "PPO", values: [0.6, .nan])])
        XCTAssertTrue(svg.hasPrefix("<svg "))
        XCTAssertTrue(svg.contains("Held-out &lt;eval&gt;"))
        // background + 2 legend swatches + 3 finite bars (the NaN bar is skipped)
        XCTAssertEqual(svg.components(separatedBy: "<rect").count - 1, 6)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-barchart-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: url) }
        try BarChart.write(svg, to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), svg)
    }
}
