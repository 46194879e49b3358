import Foundation

/// What to do with a record longer than the sequence length (`--overlong`), shared by sft, reward, dpo and ppo.
public enum OverlongPolicy: String, CaseIterable, Codable, Sendable {
    /// Leave the record out (the default: a cut reply teaches the model to stop mid-sentence, or never to stop).
    case drop
    /// Cut it to fit (sequences lose their end; preference pairs keep the end of the prompt and the start of the replies).
    case truncate
    /// Stop with an error naming the record.
    case error
}

/// Records dropped or cut for length, per input file, and the longest record seen.
public struct OverlongReport: Codable, Equatable, Sendable {
    public struct PerFile: Codable, Equatable, Sendable {
        public var file: String
        public var dropped: Int
        public var truncated: Int
    }
    public var policy: OverlongPolicy
    public var maxLength: Int
    public var files: [PerFile] = []
    /// The longest record (tokens) and where it is.
    public var longest: Int = 0
    public var longestAt: String?

    public init(policy: OverlongPolicy, maxLength: Int) { self.policy = policy; self.maxLength = maxLength }

    public var dropped: Int { files.reduce(0) { $0 + $1.dropped } }
    public var truncated: Int { files.reduce(0) { $0 + $1.truncated } }

    /// Notes a record's length; returns whether it is over-long.
    public mutating func see(length: Int, at location: SourceLocation) -> Bool {
        if length > longest { longest = length; longestAt = location.description }
        return length > maxLength
    }

    public mutating func count(_ location: SourceLocation, dropped d: Int = 0, truncated t: Int = 0) {
        if let i = files.firstIndex(where: { $0.file == location.file }) {
            files[i].dropped += d; files[i].truncated += t
        } else {
            files.append(PerFile(file: location.file, dropped: d, truncated: t))
        }
    }

    /// The error for `--overlong error`.
    public func error(length: Int, at location: SourceLocation) -> RecordError {
        RecordError(location, "the record is \(length) tokens, longer than the sequence length \(maxLength) (--overlong error); raise the sequence length, or use --overlong drop or truncate")
    }

    /// The error when nothing trainable is left.
    public func nothingLeft(_ what: String) -> EncodeError {
        EncodeError(message: "no \(what) left: every record is longer than \(maxLength) tokens and --overlong is \(policy.rawValue) "
                    + "(longest: \(longest) tokens at \(longestAt ?? "?")); raise the sequence length or use --overlong truncate")
    }

    /// One line for logs ("" when nothing was dropped or cut).
    public var summary: String {
        guard dropped + truncated > 0 else { return "" }
        let per = files.filter { $0.dropped + $0.truncated > 0 }
            .map { "\(URL(fileURLWithPath: $0.file).lastPathComponent): \($0.dropped) dropped, \($0.truncated) truncated" }
        return "over-long records (> \(maxLength) tokens, --overlong \(policy.rawValue)): \(dropped) dropped, \(truncated) truncated (\(per.joined(separator: "; ")); longest \(longest) tokens at \(longestAt ?? "?"))"
    }
}
