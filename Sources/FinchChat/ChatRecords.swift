import Foundation
import FinchModel

/// The JSONL records the REPL writes, ready for training.
public enum ChatRecords {
    /// A chat-format SFT record: `{"messages":[{"role":…,"content":…},…]}`.
    public static func sft(_ conversation: Conversation) -> String {
        "{\"messages\":\(JSONText.messages(conversation.messages))}"
    }

    /// A preference record: `{"prompt":[messages before the answer],"chosen":"…","rejected":"…"}`.
    /// The prompt is in chat format (with the system prompt first when there is one), the answers are strings.
    public static func preference(prompt: [Message], chosen: String, rejected: String) -> String {
        "{\"prompt\":\(JSONText.messages(prompt)),\"chosen\":\(JSONText.quote(chosen)),\"rejected\":\(JSONText.quote(rejected))}"
    }

    /// A KTO record in TRL's unpaired form: `{"prompt":[messages before the answer],"completion":"…","label":true|false}`.
    public static func feedback(prompt: [Message], completion: String, desirable: Bool) -> String {
        "{\"prompt\":\(JSONText.messages(prompt)),\"completion\":\(JSONText.quote(completion)),\"label\":\(desirable)}"
    }

    /// Appends one line to a JSONL file, creating it (and its folder) when missing. The file is rewritten
    /// through a temporary file and a rename, so a crash never leaves a half-written line.
    public static func append(line: String, to url: URL) throws {
        let fm = FileManager.default
        var data = Data()
        if fm.fileExists(atPath: url.path) {
            do { data = try Data(contentsOf: url) } catch {
                throw ChatFileError("\(url.path): cannot read (\(error.localizedDescription))")
            }
            if let last = data.last, last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        }
        data.append(Data((line + "\n").utf8))
        do { try AtomicFileWriter.write(data, to: url) } catch {
            throw ChatFileError("\(url.path): cannot write (\(error))")
        }
    }
}

/// A file the chat tools could not read or write; the message names the file.
public struct ChatFileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Atomic writes (temporary file + rename) through FinchModel's `AtomicFile`.
enum AtomicFileWriter {
    static func write(_ data: Data, to url: URL) throws { try AtomicFile.write(data, to: url) }
}
