import Foundation
import XCTest
import FinchTrain

/// BLEU and ROUGE-L against the reference packages: sacrebleu's `corpus_bleu` / `sentence_bleu` with their
/// defaults, and rouge-score's `RougeScorer(['rougeL'], use_stemmer=False)`.
/// Vectors: `python3 tools/vectors/metric_vectors.py` (run by `tools/test_assets.sh`).
final class MetricVectorTests: XCTestCase {
    static let file: URL = {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = (env?.isEmpty == false) ? URL(fileURLWithPath: env!)
            : FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return base.appendingPathComponent("metric_vectors/cases.json")
    }()

    struct Vectors: Decodable {
        struct TokenCase: Decodable {
            let text: String
            let tok13a: String
            let rouge_tokens: [String]
        }
        struct BLEU: Decodable {
            let score: Double
            let counts: [Int]
            let totals: [Int]
            let precisions: [Double]
            let bp: Double
            let sys_len: Int
            let ref_len: Int
        }
        struct Rouge: Decodable {
            let precision: Double
            let recall: Double
            let fmeasure: Double
        }
        struct Corpus: Decodable {
            let name: String
            let hypotheses: [String]
            let references: [String]
            let bleu: BLEU
            let sentence_bleu: [Double]
            let rouge_l: [Rouge]
            let rouge_l_mean: Double
        }
        let sacrebleu_version: String
        let rouge_score_version: String
        let tokenizer: [TokenCase]
        let corpora: [Corpus]
    }

    func vectors() throws -> Vectors {
        guard let data = try? Data(contentsOf: Self.file) else {
            XCTFail("metric vectors missing at \(Self.file.path): run tools/test_assets.sh "
                    + "(or pip install sacrebleu rouge-score && python3 tools/vectors/metric_vectors.py)")
            throw XCTSkip("no metric vectors")
        }
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    /// Code points, since Python compares strings by code point and Swift's `==` by canonical equivalence.
    func codePoints(_ s: [String]) -> [[UInt32]] { s.map { $0.unicodeScalars.map(\.value) } }

    /// |a − b| / max(|b|, 1e-300) with exact zeros equal.
    func relativeDifference(_ a: Double, _ b: Double) -> Double {
        a == b ? 0 : abs(a - b) / max(abs(b), 1e-300)
    }

    func testTokenizersMatchSacrebleuAndRougeScore() throws {
        let v = try vectors()
        XCTAssertGreaterThan(v.tokenizer.count, 100)
        var bad13a = 0, badRouge = 0
        for c in v.tokenizer {
            let expected13a = c.tok13a.unicodeScalars.split(whereSeparator: { $0 == " " }).map { String(String.UnicodeScalarView($0)) }
            let got = EvalMetrics.tokenize13a(c.text)
            if codePoints(got) != codePoints(expected13a) {
                bad13a += 1
                if bad13a <= 5 { XCTFail("13a \(c.text.debugDescription): got \(got), sacrebleu \(expected13a)") }
            }
            let rouge = EvalMetrics.rougeTokens(c.text)
            if rouge != c.rouge_tokens {
                badRouge += 1
                if badRouge <= 5 { XCTFail("rouge tokens \(c.text.debugDescription): got \(rouge), rouge-score \(c.rouge_tokens)") }
            }
        }
        print("MetricVectorTests: \(v.tokenizer.count) texts, 13a mismatches \(bad13a), rouge-score token mismatches \(badRouge)")
        XCTAssertEqual(bad13a, 0)
        XCTAssertEqual(badRouge, 0)
    }

    func testCorpusBLEUMatchesSacrebleu() throws {
        let v = try vectors()
        var worst = 0.0, worstName = "", worstSentence = 0.0, worstSentenceName = ""
        for c in v.corpora {
            let s = EvalMetrics.sacreBLEU(hypotheses: c.hypotheses, references: c.references)
            XCTAssertEqual(s.counts, c.bleu.counts, c.name)
            XCTAssertEqual(s.totals, c.bleu.totals, c.name)
            XCTAssertEqual(s.sysLen, c.bleu.sys_len, c.name)
            XCTAssertEqual(s.refLen, c.bleu.ref_len, c.name)
            XCTAssertLessThanOrEqual(relativeDifference(s.bp, c.bleu.bp), 1e-12, c.name)
            for (p, q) in zip(s.precisions, c.bleu.precisions) {
                XCTAssertLessThanOrEqual(relativeDifference(p, q), 1e-12, "\(c.name) precisions \(s.precisions) vs \(c.bleu.precisions)")
            }
            // What `finch eval` stores (×100 = what it prints).
            let finch = EvalMetrics.corpusBLEU(hypotheses: c.hypotheses, references: c.references) * 100
            let d = relativeDifference(finch, c.bleu.score)
            XCTAssertLessThanOrEqual(d, 1e-9, "\(c.name): finch \(finch), sacrebleu \(c.bleu.score)")
            if d >= worst { worst = d; worstName = c.name }
            for (i, (h, r)) in zip(c.hypotheses, c.references).enumerated() {
                let sb = EvalMetrics.sentenceBLEU(h, r) * 100
                let ds = relativeDifference(sb, c.sentence_bleu[i])
                XCTAssertLessThanOrEqual(ds, 1e-9, "\(c.name) row \(i): finch \(sb), sacrebleu.sentence_bleu \(c.sentence_bleu[i])")
                if ds >= worstSentence { worstSentence = ds; worstSentenceName = "\(c.name) row \(i)" }
            }
        }
        print("MetricVectorTests: sacrebleu \(v.sacrebleu_version), \(v.corpora.count) corpora; worst relative difference "
              + "corpus BLEU \(worst) (\(worstName)), sentence BLEU \(worstSentence) (\(worstSentenceName))")
    }

    func testRougeLMatchesRougeScore() throws {
        let v = try vectors()
        var worst = 0.0, worstName = "", worstMean = 0.0
        for c in v.corpora {
            var fs: [Double] = []
            for (i, (h, r)) in zip(c.hypotheses, c.references).enumerated() {
                let s = EvalMetrics.rougeLScore(h, r), e = c.rouge_l[i]
                let d = max(relativeDifference(s.precision, e.precision), relativeDifference(s.recall, e.recall),
                            relativeDifference(s.fmeasure, e.fmeasure))
                XCTAssertLessThanOrEqual(d, 1e-12, "\(c.name) row \(i): finch \(s), rouge-score \(e)")
                XCTAssertEqual(EvalMetrics.rougeL(h, r), s.fmeasure)
                if d >= worst { worst = d; worstName = "\(c.name) row \(i)" }
                fs.append(EvalMetrics.rougeL(h, r))
            }
            // `finch eval`'s ROUGE-L: the mean of the rows' F-measures.
            let dm = relativeDifference(EvalMetrics.mean(fs), c.rouge_l_mean)
            XCTAssertLessThanOrEqual(dm, 1e-9, c.name)
            worstMean = max(worstMean, dm)
        }
        print("MetricVectorTests: rouge-score \(v.rouge_score_version); worst relative difference ROUGE-L pair "
              + "\(worst) (\(worstName)), corpus mean \(worstMean)")
    }
}
