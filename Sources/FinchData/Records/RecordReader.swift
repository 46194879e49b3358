import Foundation

/// The records of one input file, and what was skipped (only with `skipInvalid`).
public struct RecordFile: Sendable {
    public var url: URL
    public var format: RecordFormat
    public var records: [Record]
    public var skipped: [RecordError]
}

/// Reads JSONL / text record files with per-file format detection.
public enum RecordReader {
    public struct Options: Sendable {
        /// Forces the format instead of detecting it per file.
        public var format: RecordFormat?
        /// Skip bad lines (collected in `RecordFile.skipped`) instead of failing on the first.
        public var skipInvalid = false
        /// Plain text files are cut at blank lines into records of about this many characters.
        public var textChunkCharacters = 8192
        /// Threads parsing JSON lines.
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public init(format: RecordFormat? = nil, skipInvalid: Bool = false) {
            self.format = format; self.skipInvalid = skipInvalid
        }
    }

    /// Reads every file, in order.
    public static func read(_ urls: [URL], options: Options = Options()) throws -> [RecordFile] {
        try urls.map { try read($0, options: options) }
    }

    /// Reads one file.
    public static func read(_ url: URL, options: Options = Options()) throws -> RecordFile {
        let name = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw RecordError(SourceLocation(file: name, line: 0), "cannot read file: \(error.localizedDescription)")
        }
        let format = try options.format ?? detectFormat(name: name, data: data)
        if format == .text && !isJSONL(name) {
            return RecordFile(url: url, format: .text, records: try textRecords(name: name, data: data, chunk: options.textChunkCharacters), skipped: [])
        }
        // Lines are parsed on all cores; errors are still reported (or skipped) in line order.
        let lines = nonBlankLines(data)
        let parsed = try parallelMap(lines, threads: options.threads) { (lineNumber, range) -> Result<Record, RecordError> in
            let loc = SourceLocation(file: name, line: lineNumber)
            do {
                let object = try parseObject(data.subdata(in: range), loc)
                // Detected per record (instruction, chat and text records may share a file); a record of another
                // kind (a preference pair among instructions, say) is an error naming its line.
                let own = try options.format ?? RecordParser.detect(object, loc)
                guard own.datasetKind == format.datasetKind else {
                    throw RecordError(loc, "a \(own.rawValue) record in a file of \(format.rawValue) records (its first record); a file holds one kind: instruction/chat/text records, preference pairs, or prompts")
                }
                return .success(Record(location: loc, body: try RecordParser.body(object, format: own, loc)))
            } catch let e as RecordError { return .failure(e) }
            catch { return .failure(RecordError(loc, "\(error)")) }
        }
        var records: [Record] = []
        var skipped: [RecordError] = []
        records.reserveCapacity(parsed.count)
        for result in parsed {
            switch result {
            case .success(let r): records.append(r)
            case .failure(let e): if options.skipInvalid { skipped.append(e) } else { throw e }
            }
        }
        return RecordFile(url: url, format: format, records: records, skipped: skipped)
    }

    /// The format of a file: `.txt`-like names are text; JSONL is judged by the keys of its first record.
    public static func detectFormat(of url: URL) throws -> RecordFormat {
        try detectFormat(name: url.path, data: try Data(contentsOf: url))
    }

    /// Whether a file name is a JSONL record file (`.jsonl`, `.json`, `.ndjson`) rather than plain text.
    public static func isJSONL(_ name: String) -> Bool {
        let ext = (name as NSString).pathExtension.lowercased()
        return ext == "jsonl" || ext == "json" || ext == "ndjson"
    }

    /// Table and archive formats that would otherwise be read as plain text, one document per file.
    static let refusedExtensions: Set<String> = ["csv", "tsv", "parquet", "arrow", "xlsx", "xls", "gz", "zst", "zip", "bz2", "xz"]

    static func detectFormat(name: String, data: Data) throws -> RecordFormat {
        let ext = (name as NSString).pathExtension.lowercased()
        if refusedExtensions.contains(ext) {
            throw RecordError(SourceLocation(file: name, line: 1),
                              "a .\(ext) file is not read (records are JSONL: one JSON object per line; plain text is .txt); convert it to JSONL first")
        }
        guard isJSONL(name) else { return .text }
        var found: RecordFormat? = nil
        var firstError: RecordError? = nil
        try forEachLine(data) { n, line in
            guard found == nil, firstError == nil else { return }
            do { found = try RecordParser.detect(try parseObject(line, SourceLocation(file: name, line: n)), SourceLocation(file: name, line: n)) }
            catch let e as RecordError { firstError = e }
        }
        if let found { return found }
        if let firstError { throw firstError }
        throw RecordError(SourceLocation(file: name, line: 1), "file holds no records")
    }

    /// Calls `body` with (1-based line number, bytes) for every non-blank line.
    static func forEachLine(_ data: Data, _ body: (Int, Data) throws -> Void) throws {
        for (n, range) in nonBlankLines(data) { try body(n, data.subdata(in: range)) }
    }

    /// (1-based line number, byte range without the line break) of every line that is not blank.
    static func nonBlankLines(_ data: Data) -> [(Int, Range<Data.Index>)] {
        // Line boundaries found with memchr over raw bytes (Data slicing per byte is slow).
        var lines: [(Int, Range<Data.Index>)] = []
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            var start = 0, number = 0
            while start < raw.count {
                let p = memchr(base + start, 0x0A, raw.count - start)
                let end = p.map { base.distance(to: UnsafeRawPointer($0)) } ?? raw.count
                number += 1
                var e = end
                if e > start && raw[e - 1] == 0x0D { e -= 1 }
                var blank = true
                for k in start..<e where raw[k] != 0x20 && raw[k] != 0x09 { blank = false; break }
                if !blank { lines.append((number, (data.startIndex + start)..<(data.startIndex + e))) }
                start = end + 1
            }
        }
        return lines
    }

    static func parseObject(_ line: Data, _ loc: SourceLocation) throws -> [String: Any] {
        guard String(data: line, encoding: .utf8) != nil else { throw RecordError(loc, "invalid UTF-8") }
        let value: Any
        do { value = try JSONSerialization.jsonObject(with: line, options: [.fragmentsAllowed]) } catch {
            let detail = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error.localizedDescription)"
            throw RecordError(loc, "malformed JSON: \(detail)")
        }
        guard let object = value as? [String: Any] else { throw RecordError(loc, "expected a JSON object, found \(RecordParser.typeName(value))") }
        return object
    }

    /// Plain text cut at blank lines into chunks of about `chunk` characters; each chunk remembers its first line.
    static func textRecords(name: String, data: Data, chunk: Int) throws -> [Record] {
        guard let text = String(data: data, encoding: .utf8) else {
            // Name the first offending line.
            var bad = 1
            try forEachLine(data) { n, line in if bad == 1, String(data: line, encoding: .utf8) == nil { bad = n } }
            throw RecordError(SourceLocation(file: name, line: bad), "invalid UTF-8")
        }
        var records: [Record] = []
        var current: [Substring] = []
        var currentChars = 0
        var startLine = 1
        func emit() {
            while current.last?.isEmpty == true { current.removeLast() }
            if !current.isEmpty {
                records.append(Record(location: SourceLocation(file: name, line: startLine), body: .text(current.joined(separator: "\n"))))
            }
            current = []; currentChars = 0
        }
        var n = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            // Cut at a paragraph break once a chunk is full, or at any line break once it is twice full (text with
            // one sentence per line and no blank lines would otherwise be one record, and records are what the
            // held-out split divides).
            if currentChars >= chunk && (line.isEmpty || currentChars >= 2 * chunk) { emit() }
            if current.isEmpty {
                if line.isEmpty { continue }
                startLine = n
            }
            current.append(line)
            currentChars += line.count + 1
        }
        emit()
        return records
    }
}
