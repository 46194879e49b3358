import Foundation

/// Turns record files into a packed, sharded, zstd-compressed dataset folder.
public enum DatasetPacker {
    public struct Options: Sendable {
        public var inputs: [URL]
        public var maxLength: Int
        /// Forces the record format of every input.
        public var format: RecordFormat?
        /// Put several short sequences into one entry (document boundaries kept); else one record per entry.
        public var pack = true
        public var trainOnPrompt = false
        /// Skip bad records (listed in `skipped.txt`) instead of failing.
        public var skipInvalid = false
        /// Target compressed shard size.
        public var shardMegabytes = 64.0
        public var zstdLevel: Int32 = 6
        /// Plain text records are cut into chunks of about this many characters before tokenizing.
        public var textChunkCharacters = 8192
        /// Records longer than `maxLength` (plain text is always split instead).
        public var overlong = OverlongPolicy.drop
        /// Worker threads for tokenization and compression.
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public init(inputs: [URL], maxLength: Int) { self.inputs = inputs; self.maxLength = maxLength }
    }

    /// Progress messages (one line each).
    public typealias Progress = (String) -> Void

    /// Packs `options.inputs` into `folder`. Everything is written into a temporary sibling folder that is
    /// renamed into place at the end, so an interrupted pack leaves no half dataset behind.
    @discardableResult
    public static func pack(_ options: Options, tokenizer: any TextTokenizer, template: ChatTemplate?, into folder: URL,
                            progress: Progress? = nil) throws -> DatasetManifest {
        guard options.maxLength >= 2 else { throw EncodeError(message: "--max-length must be at least 2") }
        var readOptions = RecordReader.Options(format: options.format, skipInvalid: options.skipInvalid)
        readOptions.textChunkCharacters = options.textChunkCharacters
        let files = try RecordReader.read(options.inputs, options: readOptions)
        var records: [(source: Int, record: Record)] = []
        for (i, f) in files.enumerated() { for r in f.records { records.append((i, r)) } }
        var skipped: [RecordError] = files.flatMap(\.skipped)
        progress?("read \(records.count) records from \(files.count) file(s)")

        let kind = try datasetKind(files)
        let needsTemplate = records.contains { if case .text = $0.record.body { return false } else { return true } }
        var encoder: ChatEncoder? = nil
        if needsTemplate {
            guard let template else { throw EncodeError(message: "these records need a chat template (--template)") }
            encoder = try ChatEncoder(tokenizer: tokenizer, template: template, trainOnPrompt: options.trainOnPrompt)
        } else if let template {
            encoder = try? ChatEncoder(tokenizer: tokenizer, template: template, trainOnPrompt: options.trainOnPrompt)
        }
        let textEncoder = try encoder ?? ChatEncoder(tokenizer: tokenizer, template: plainTemplate(tokenizer), trainOnPrompt: true)

        // Tokenize in parallel (the sentencepiece processor is immutable after loading).
        let encoded = try parallelMap(records, threads: options.threads) { item -> Result<Encoded, RecordError> in
            do { return .success(try encode(item.record, encoder: encoder, textEncoder: textEncoder, maxLength: options.maxLength)) }
            catch let e as RecordError { return .failure(e) }
            catch { return .failure(RecordError(item.record.location, "\(error)")) }
        }
        progress?("tokenized \(records.count) records")

        // Validate, truncate, assemble entries.
        var entries: [Example] = []
        var lengths: [Int] = []
        var truncated = 0, recordCount = 0
        var sourceRecords = Array(repeating: 0, count: files.count)
        var pending = Example(ids: [], mask: [], documents: [])
        func flushPending() {
            if !pending.ids.isEmpty { entries.append(pending) }
            pending = Example(ids: [], mask: [], documents: [])
        }
        var overlong = OverlongReport(policy: options.overlong, maxLength: options.maxLength)
        for (n, result) in encoded.enumerated() {
            let (source, record) = records[n]
            let loc = record.location
            do {
                let e = try result.get()
                lengths.append(e.length)
                var cutAllowed = false
                if e.isRecordWithLength, overlong.see(length: e.length, at: loc) {
                    switch options.overlong {
                    case .drop: overlong.count(loc, dropped: 1); continue
                    case .error: throw overlong.error(length: e.length, at: loc)
                    case .truncate: cutAllowed = true
                    }
                }
                var docs: (parts: [Example], truncated: Bool)
                do {
                    docs = try e.documents(maxLength: options.maxLength, endOfTurn: encoder?.endOfTurnID, location: loc,
                                           template: encoder?.template.name, allowCutEnd: cutAllowed)
                } catch let error as RecordError where cutAllowed {
                    _ = error   // nothing trainable survives the cut: dropped after all
                    overlong.count(loc, dropped: 1)
                    continue
                }
                if docs.truncated { truncated += 1; overlong.count(loc, truncated: 1) }
                for i in docs.parts.indices {
                    docs.parts[i].documents = docs.parts[i].documents.map {
                        DocumentInfo(length: $0.length, record: n, source: source, line: loc.line)
                    }
                }
                recordCount += 1
                sourceRecords[source] += 1
                if kind == .sequences {
                    for part in docs.parts {
                        if options.pack {
                            if pending.ids.count + part.ids.count > options.maxLength { flushPending() }
                            pending.ids += part.ids; pending.mask += part.mask; pending.documents += part.documents
                        } else {
                            entries.append(part)
                        }
                    }
                } else {
                    // Preference triples and prompts: all parts of a record form one entry.
                    entries.append(Example(ids: docs.parts.flatMap(\.ids), mask: docs.parts.flatMap(\.mask),
                                           documents: docs.parts.flatMap(\.documents)))
                }
            } catch let error as RecordError {
                if options.skipInvalid { skipped.append(error) } else { throw error }
            }
        }
        flushPending()
        if !overlong.summary.isEmpty { progress?(overlong.summary) }
        if entries.isEmpty, overlong.dropped > 0 { throw overlong.nothingLeft("records") }
        guard !entries.isEmpty else { throw EncodeError(message: "no records to write (all \(skipped.count) skipped?)") }

        // Write into a temporary sibling folder, then move it into place.
        let fm = FileManager.default
        let parent = folder.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let temp = parent.appendingPathComponent(".\(folder.lastPathComponent).partial-\(getpid())")
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        do {
            let idBytes = tokenizer.vocabSize <= 1 << 16 ? 2 : 4
            let writer = ShardWriter(folder: temp, shardBytes: max(1, Int(options.shardMegabytes * 1_048_576)), idBytes: idBytes,
                                     level: options.zstdLevel)
            // Compress in parallel, write in order.
            let batch = 4096
            for start in stride(from: 0, to: entries.count, by: batch) {
                let slice = Array(entries[start..<min(entries.count, start + batch)])
                let frames = try parallelMapWithCodec(slice, threads: options.threads, level: options.zstdLevel) { codec, e in
                    try ExampleCodec.encode(e, idBytes: idBytes).withUnsafeBytes { try codec.compress($0) }
                }
                for (e, f) in zip(slice, frames) { try writer.add(compressed: f, example: e) }
            }
            try writer.flush()
            if !skipped.isEmpty {
                let report = skipped.map(\.description).joined(separator: "\n") + "\n"
                try Data(report.utf8).write(to: temp.appendingPathComponent("skipped.txt"), options: .atomic)
            }
            try tokenizer.save(toFolder: temp)
            let manifest = DatasetManifest(
                kind: kind,
                tokenizer: .init(sha256: tokenizer.fingerprint, vocabSize: tokenizer.vocabSize, bosID: tokenizer.bosID,
                                 eosID: tokenizer.eosID, padID: tokenizer.padID, unkID: tokenizer.unkID),
                template: needsTemplate ? encoder?.template : nil, maxLength: options.maxLength,
                packed: options.pack && kind == .sequences, trainOnPrompt: options.trainOnPrompt, idBytes: idBytes,
                zstdLevel: Int(options.zstdLevel),
                sources: files.enumerated().map { i, f in
                    .init(path: f.url.path, format: f.format, records: sourceRecords[i],
                          skipped: skipped.filter { $0.location.file == f.url.path }.count)
                },
                records: recordCount, entries: entries.count, tokens: entries.reduce(0) { $0 + $1.ids.count },
                trainedTokens: entries.reduce(0) { $0 + $1.trainedCount }, truncated: truncated, skipped: skipped.count,
                lengths: DatasetManifest.stats(lengths), shards: writer.shards, createdBy: "finch data pack",
                overlong: overlong)
            try manifest.jsonData().write(to: temp.appendingPathComponent(DatasetManifest.fileName), options: .atomic)
            try replace(folder, with: temp)
            progress?("wrote \(entries.count) entries in \(writer.shards.count) shard(s) to \(folder.path)")
            return manifest
        } catch {
            try? fm.removeItem(at: temp)
            throw error
        }
    }

    /// Moves `temp` to `folder`. An existing folder is replaced only if it is empty or a packed dataset.
    static func replace(_ folder: URL, with temp: URL) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: folder.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
            guard contents.isEmpty || contents.contains(DatasetManifest.fileName) else {
                throw EncodeError(message: "\(folder.path) exists and is not a packed dataset; refusing to replace it")
            }
            let old = folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).old-\(getpid())")
            try fm.moveItem(at: folder, to: old)
            try fm.moveItem(at: temp, to: folder)
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: temp, to: folder)
        }
    }

    static func datasetKind(_ files: [RecordFile]) throws -> DatasetKind {
        var kinds = Set<DatasetKind>()
        for f in files {
            switch f.format {
            case .alpaca, .chat, .text: kinds.insert(.sequences)
            case .preference: kinds.insert(.preference)
            case .prompt: kinds.insert(.prompts)
            }
        }
        guard kinds.count <= 1 else {
            throw EncodeError(message: "inputs mix dataset kinds (\(files.map { "\($0.url.lastPathComponent): \($0.format.rawValue)" }.joined(separator: ", "))); pack them separately")
        }
        return kinds.first ?? .sequences
    }

    /// A template for tokenizers/datasets with no chat structure (plain text only).
    public static func plainTemplate(_ tok: any TextTokenizer) throws -> ChatTemplate {
        let eos = tok.eosID >= 0 ? (tok.piece(tok.eosID) ?? "</s>") : (tok.piece(0) ?? "<unk>")
        let json = #"{"name":"plain","user":{"prefix":"","suffix":""},"assistant":{"prefix":"","suffix":""},"end_of_turn":"\#(eos)"}"#
        return try JSONDecoder().decode(ChatTemplate.self, from: Data(json.utf8))
    }
}
