// Fuzzes the chat-template renderer: the input is a Jinja template, lexed, parsed and rendered (the Jinja
// interpreter of `HFChatTemplate`) with a fixed conversation, as `finch` renders a model's own chat template.
import Foundation
import FinchData
import FuzzSupport

let messages: [JinjaValue] = [
    .dict(JinjaDict([("role", .string("system")), ("content", .string("You are terse."))])),
    .dict(JinjaDict([("role", .string("user")), ("content", .string("Hi <b>there</b> \u{1F600}\n"))])),
    .dict(JinjaDict([("role", .string("assistant")), ("content", .string(" Hello! ")),
                     ("reasoning_content", .string("greet")),
                     ("tool_calls", .array([.dict(JinjaDict([("type", .string("function")),
                         ("function", .dict(JinjaDict([("name", .string("get_time")),
                                                       ("arguments", .dict(JinjaDict([("tz", .string("UTC"))])))])))]))]))])),
    .dict(JinjaDict([("role", .string("tool")), ("content", .string("12:00")), ("name", .string("get_time"))])),
    .dict(JinjaDict([("role", .string("user")), ("content", .array([
        .dict(JinjaDict([("type", .string("text")), ("text", .string("and now?"))]))]))])),
]
let tools: [JinjaValue] = [
    .dict(JinjaDict([("type", .string("function")), ("function", .dict(JinjaDict([
        ("name", .string("get_time")), ("description", .string("Current time")),
        ("parameters", .dict(JinjaDict([("type", .string("object")),
                                        ("properties", .dict(JinjaDict([("tz", .dict(JinjaDict([("type", .string("string"))])))])))])))])))])),
]
let now = Date(timeIntervalSince1970: 1_700_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // Templates come from JSON strings, so they are valid Unicode; invalid UTF-8 is repaired as a JSON reader would.
    let source = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let t = try HFChatTemplate(source: source, name: "fuzz.jinja", bosToken: "<s>", eosToken: "</s>",
                                   extraSpecialTokens: ["unk_token": "<unk>"])
        Fuzz.accepted(String(describing: (try? t.renderTracking(messages: messages, addGenerationPrompt: true, tools: tools, now: now).text) ?? "render failed: \(String(describing: Result { try t.renderTracking(messages: messages, addGenerationPrompt: true, tools: tools, now: now) }))"))
        _ = try? t.renderTracking(messages: messages, addGenerationPrompt: true, tools: tools,
                                  extra: ["enable_thinking": .bool(false)], now: now)
        _ = try? t.renderTracking(messages: Array(messages.prefix(2)), addGenerationPrompt: false, now: now)
    } catch {
        Fuzz.report(error)
        // A thrown error (naming the construct and line) is the right answer to a bad template.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_template_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
