import Foundation
import FinchData

/// The token stream behind PPO's pretraining-loss mixing (`--ptx-coef`, InstructGPT's PPO-ptx): windows of it are
/// trained with the causal-LM loss beside the PPO loss, so the policy keeps what it could do before RL.
///
/// A plain text file is tokenized as it is, every token trained. A JSONL file of instruction or chat records is
/// rendered with the policy's chat template, as SFT renders it, and only the reply tokens are trained (the SFT
/// loss on the SFT demonstrations, which anchors the policy to them); text records in it are trained whole.
public struct PTXData: Sendable {
    public var ids: [Int]
    /// 1 where the token's log-probability is trained.
    public var mask: [UInt8]

    public init(ids: [Int], mask: [UInt8]) { self.ids = ids; self.mask = mask }

    /// Enough for a long run of `maxLength`-token windows; larger inputs are cut here.
    public static let maxCharacters = 2_000_000, maxTokens = 1_000_000

    public static func load(_ path: String, encoder: ChatEncoder, tokenizer: any TextTokenizer) throws -> PTXData {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path) else { throw TrainingError("--ptx-data \(path): no such file") }
        if !RecordReader.isJSONL(path) {
            let text = try String(contentsOf: url, encoding: .utf8)
            let ids = try tokenizer.encode(String(text.prefix(maxCharacters))).map(Int.init)
            return try checked(PTXData(ids: ids, mask: Array(repeating: 1, count: ids.count)), path)
        }
        var out = PTXData(ids: [], mask: [])
        for r in try RecordReader.read(url).records {
            let s: EncodedSequence
            switch r.body {
            case .chat(let m): s = try encoder.encodeConversation(m)
            case .text(let t): s = try encoder.encodeText(t)
            default:
                throw TrainingError("\(r.location): --ptx-data takes text, instruction or chat records, not preference or prompt-only ones")
            }
            out.ids += s.ids.map(Int.init)
            out.mask += s.mask
            if out.ids.count >= maxTokens { break }
        }
        return try checked(out, path)
    }

    private static func checked(_ d: PTXData, _ path: String) throws -> PTXData {
        guard d.ids.count > 8, d.mask.dropFirst().contains(1) else { throw TrainingError("\(path): too little text for pretraining-loss mixing") }
        return d
    }

    /// The window of `length` tokens starting at `start`, and the gradient of `coef` × the mean loss over its trained
    /// positions with respect to each position's log-probability (position 0 has none; zero when nothing is trained).
    public func window(start: Int, length: Int, coef: Double) -> (ids: [Int], dLogprobs: [Float]) {
        let ids = Array(self.ids[start..<(start + length)])
        let trained = (1..<length).filter { mask[start + $0] == 1 }
        var d = [Float](repeating: 0, count: length)
        guard !trained.isEmpty else { return (ids, d) }
        let g = Float(-coef / Double(trained.count))
        for t in trained { d[t] = g }
        return (ids, d)
    }
}
