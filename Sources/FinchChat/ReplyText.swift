import FinchModel
import FinchData

/// One reply's tokens turned into the text shown, as they come: decoded incrementally, the end-of-turn token never
/// shown, text from a stop string on cut off (a stop string ends the reply). The chat's streamed reply and each row
/// of `finch generate` go through one of these.
struct ReplyText {
    private var detokenizer: IncrementalDetokenizer
    private var filter: StopStringFilter
    private let stopIDs: Set<Int>
    /// Everything shown so far.
    private(set) var text = ""
    /// Set by a stop string, an interruption (`interrupt()`) or `finish`.
    private(set) var stopReason: StopReason?

    init(tokenizer: any TextTokenizer, stopIDs: Set<Int>, stops: [String]) {
        detokenizer = IncrementalDetokenizer { try tokenizer.decode($0) }
        filter = StopStringFilter(stops: stops)
        self.stopIDs = stopIDs
    }

    /// Adds a generated token; returns the text to show now (often empty, always for a stop token). After a stop
    /// string (`stopReason` set) the reply must end.
    mutating func add(_ token: Int) throws -> String {
        guard !stopIDs.contains(token) else { return "" }
        let (new, stop) = filter.feed(try detokenizer.add(token))
        text += new
        if let stop { stopReason = .stopString(stop) }
        return new
    }

    /// The reader stopped the reply (Ctrl-C).
    mutating func interrupt() { stopReason = .interrupted }

    /// Ends the reply the generator stopped with `stop`; returns the held-back text still to show (none after a stop
    /// string or an interruption).
    mutating func finish(_ stop: GenerationStop) throws -> String {
        guard stopReason == nil else { return "" }
        switch stop {
        case .stopToken: stopReason = .endOfTurn
        case .maxNewTokens: stopReason = .maxTokens
        case .contextFull: stopReason = .contextFull
        case .callback, .stopWhen: stopReason = .interrupted
        }
        let rest = filter.feed(try detokenizer.finish()).text + filter.flush()
        text += rest
        return rest
    }
}
