import Foundation

/// Errors finding or reading a chat template.
public struct TemplateError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension ChatTemplate {
    /// Folders searched for templates by name, in order: `$FINCH_PROMPTS`, a `prompts/` folder beside or
    /// above the running executable (up to 5 levels, which covers `.build/<config>/finch`), the source checkout's.
    public static var searchFolders: [URL] {
        var dirs: [URL] = []
        if let env = ProcessInfo.processInfo.environment["FINCH_PROMPTS"], !env.isEmpty { dirs.append(URL(fileURLWithPath: env)) }
        var exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            dirs.append(exe.appendingPathComponent("prompts"))
            exe = exe.deletingLastPathComponent()
        }
        let source = URL(fileURLWithPath: #filePath)   // Sources/FinchData/Templates/TemplateLibrary.swift
        dirs.append(source.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("prompts"))
        return dirs
    }

    /// Loads a template by name (resolved in the search folders) or by path to a `.json` file.
    /// The default system prompt file is read and stored inline.
    public static func load(_ nameOrPath: String) throws -> ChatTemplate {
        let fm = FileManager.default
        var url: URL? = nil
        if nameOrPath.hasSuffix(".json") || nameOrPath.contains("/") {
            let u = URL(fileURLWithPath: nameOrPath)
            guard fm.fileExists(atPath: u.path) else { throw TemplateError(message: "\(nameOrPath): no such template file") }
            url = u
        } else {
            url = searchFolders.map { $0.appendingPathComponent("\(nameOrPath).json") }.first { fm.fileExists(atPath: $0.path) }
        }
        guard let url else {
            let known = available().joined(separator: ", ")
            throw TemplateError(message: "unknown chat template \"\(nameOrPath)\" (known: \(known); searched \(searchFolders.map(\.path).joined(separator: ", ")))")
        }
        var t: ChatTemplate
        do { t = try JSONDecoder().decode(ChatTemplate.self, from: Data(contentsOf: url)) } catch {
            throw TemplateError(message: "\(url.path): invalid chat template: \(error)")
        }
        if t.defaultSystemText == nil, let s = t.defaultSystem {
            let file = url.deletingLastPathComponent().appendingPathComponent("system/\(s).txt")
            guard let text = try? String(contentsOf: file, encoding: .utf8) else {
                throw TemplateError(message: "\(url.path): default system prompt \(file.path) not found")
            }
            t.defaultSystemText = text.trimmingCharacters(in: .newlines)
        }
        return t
    }

    /// Names of the templates in the search folders.
    public static func available() -> [String] {
        var names = Set<String>()
        for d in searchFolders {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? [] where f.hasSuffix(".json") {
                names.insert(String(f.dropLast(5)))
            }
        }
        return names.sorted()
    }

    /// The template as self-contained JSON (default system text inline).
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    // MARK: stored with a model

    /// Records this template in a model folder: `finch.json` → `chat_template` (other keys kept) and a full
    /// copy in `chat_template.json`, both written atomically. Trainers call this when saving a model.
    public func save(toModel folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // A model's own Jinja template travels in its tokenizer_config.json (copied with the tokenizer); a copy here
        // too would shadow it for readers that look at chat_template.json first.
        if jinja == nil { try jsonData().write(to: folder.appendingPathComponent("chat_template.json"), options: .atomic) }
        let finch = folder.appendingPathComponent("finch.json")
        var object = try Self.jsonObjectIfPresent(finch) ?? [:]   // a damaged finch.json is an error, not replaced
        object["chat_template"] = name
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: finch, options: .atomic)
    }

    /// The template a model was trained with: its `chat_template.json` copy, else the name in `finch.json`
    /// resolved in the search folders; nil when the model records none.
    /// Order: Finch's own copy (`chat_template.json` with Finch's fields), the model's Jinja template
    /// (tokenizer_config.json, chat_template.jinja, or a GGUF file's `tokenizer.chat_template`), the name in finch.json.
    public static func forModel(_ folder: URL) throws -> ChatTemplate? {
        if folder.pathExtension.lowercased() == "gguf" { return try modelJinja(folder) }
        let copy = folder.appendingPathComponent("chat_template.json")
        if let o = try jsonObjectIfPresent(copy), o["user"] != nil || o["jinja"] != nil {
            do { return try JSONDecoder().decode(ChatTemplate.self, from: Data(contentsOf: copy)) } catch {
                throw TemplateError(message: "\(copy.path): invalid chat template: \(error)")
            }
        }
        if let model = try modelJinja(folder) { return model }
        guard let o = try jsonObjectIfPresent(folder.appendingPathComponent("finch.json")),
              let name = o["chat_template"] as? String else { return nil }
        return try load(name)
    }

    /// A JSON object file of a model folder: nil when absent; a file that is there but unreadable or not a JSON
    /// object is an error naming it (never silently skipped, which would pick another template).
    static func jsonObjectIfPresent(_ url: URL) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TemplateError(message: "\(url.path): cannot read (\(error.localizedDescription))")
        }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TemplateError(message: "\(url.path): not a JSON object")
        }
        return o
    }
}
