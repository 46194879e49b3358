import Foundation
import XCTest
import FinchData

/// Fixed local time for `strftime_now` (the vectors use the same: 2024-07-26 10:30:00 local).
private let fixedNow: Date = {
    var c = DateComponents()
    c.year = 2024; c.month = 7; c.day = 26; c.hour = 10; c.minute = 30; c.second = 0
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone.current
    return cal.date(from: c)!
}()

private func render(_ source: String, _ context: [String: JinjaValue] = [:], file: StaticString = #filePath,
                    line: UInt = #line) throws -> String {
    try JinjaTemplate(source: source, name: "t").render(context, now: fixedNow)
}

private func json(_ text: String) -> JinjaValue { try! JinjaValue.parseJSON(text) }

/// Semantics of the interpreter, with expectations taken from jinja2 3.1 as transformers configures it.
final class JinjaTests: XCTestCase {
    func testWhitespaceControl() throws {
        XCTAssertEqual(try render("<ul>\n    {% for x in xs %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n",
                                  ["xs": json("[1, 2]")]), "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>")
        XCTAssertEqual(try render("a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n e"), "abc d e")
        XCTAssertEqual(try render("a\n    {%+ if true %}b{% endif +%}\nc\n  {%+ if true +%}\nd{% endif %}"), "a\n    b\nc\n  \nd")
        XCTAssertEqual(try render("x\n  {# note #}\ny {#- trimmed -#}   z\n{# last #}\n"), "x\nyz\n")
        XCTAssertEqual(try render("  {{ 'v' }}\n  {% if true %}\n  kept\n  {% endif %}\nend"), "  v\n  kept\nend")
        XCTAssertEqual(try render("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n"), "a\nb\nc")
        XCTAssertEqual(try render("{% raw %}{{ not rendered }} {% if %}{% endraw %}\n  {%- raw -%}  x  {%- endraw %}|"),
                       "{{ not rendered }} {% if %}x|")
        XCTAssertEqual(try render("x\n\n"), "x\n")
    }

    func testLoops() throws {
        XCTAssertEqual(try render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
                                  ["xs": .string("abc")]),
                       "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|")
        XCTAssertEqual(try render("{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}", ["xs": json("[1,2,3]")]),
                       "[<1>2][1<2>3][2<3>]")
        XCTAssertEqual(try render("{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", ["xs": json("[1,2,3]")]), "odd even odd ")
        XCTAssertEqual(try render("{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", ["xs": json("[]")]), "empty")
        XCTAssertEqual(try render("{% for x in xs if x % 2 %}{{ x }}:{{ loop.length }} {% endfor %}", ["xs": json("[1,2,3,4,5]")]), "1:3 3:3 5:3 ")
        XCTAssertEqual(try render("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
                                  ["xs": json("[1,2,3,4,5]")]), "13")
        XCTAssertEqual(try render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", ["d": json(#"{"b": 1, "a": 2}"#)]), "b=1;a=2;")
        XCTAssertEqual(try render("{% set x = 1 %}{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}{{ x }}{% endfor %}{{ x }}"), "1511")
        XCTAssertEqual(try render("{% for x in nothing %}{{ x }}{% else %}none{% endfor %}"), "none")
    }

    func testNamespaceSetMacro() throws {
        XCTAssertEqual(try render("{% set ns = namespace(count=0, found=false) %}{% for x in xs %}{% set ns.count = ns.count + x %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}",
                                  ["xs": json("[1,2,3]")]), "6 True")
        XCTAssertEqual(try render("{% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c }}{{ c[0] }}"), "1two(3, 4)3")
        XCTAssertEqual(try render("{% set body %}\n  Hello {{ name }}!\n{% endset %}[{{ body }}]{% set up | upper | trim %} shout {% endset %}[{{ up }}]",
                                  ["name": .string("Ann")]), "[  Hello Ann!\n][SHOUT]")
        XCTAssertEqual(try render("{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Eve', punct='?') }} {{ greet('Al', 'Hi') }}"),
                       "Hello, Bob! Hello, Eve? Hi, Al!")
        XCTAssertEqual(try render("{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, x=4) }}"), "1(2, 3){'x': 4}")
        XCTAssertEqual(try render("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}"),
                       "<b>bold 2</b>")
        XCTAssertEqual(try render("{% filter upper %}hello {{ name }}{% endfilter %}", ["name": .string("x")]), "HELLO X")
    }

    func testExpressionsAndPythonStr() throws {
        XCTAssertEqual(try render("{{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ -2 ** 2 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }}"),
                       "3.5 2.0 3 -4 1 2 1024 4 0.30000000000000004 1e+16 1e-05")
        XCTAssertEqual(try render("{{ [1, 'a', none, 2.0] }}|{{ {'a': [1, {'b': None}]} }}|{{ (1,) }}|{{ [\"it's\"] }}"),
                       "[1, 'a', None, 2.0]|{'a': [1, {'b': None}]}|(1,)|[\"it's\"]")
        XCTAssertEqual(try render("{{ 'a' ~ 1 ~ none ~ missing ~ 2.50 }}"), "a1None2.5")
        XCTAssertEqual(try render("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' in 'cat' }} {{ 'z' not in 'abc' }} {{ 'y' if 1 > 2 else 'n' }} [{{ 'y' if false }}]"),
                       "True True True True n []")
        XCTAssertEqual(try render("{{ xs[1:] }}{{ xs[::-1] }}{{ s[::-1] }}{{ xs[5] }}|{{ d['a'] }}{{ d.a }}{{ d.missing }}",
                                  ["xs": json("[1,2,3]"), "s": .string("abc"), "d": json(#"{"a": "A"}"#)]),
                       "[2, 3][3, 2, 1]cba|AA")
        XCTAssertEqual(try render("{{ 'a\\tb\\n\\'q\\'' }}|{{ 'é\\u00e9\\x41' }}"), "a\tb\n'q'|ééA")
    }

    func testFilters() throws {
        XCTAssertEqual(try render("[{{ '  hi  ' | trim }}]{{ 'hello world-foo(bar' | title }} {{ 'hELLO' | capitalize }}"), "[hi]Hello World-Foo(Bar Hello")
        XCTAssertEqual(try render("{{ missing | default('d') }} {{ '' | default('e') }}|{{ '' | default('e', true) }} {{ none | d('n') }}"), "d |e None")
        XCTAssertEqual(try render("{{ v | tojson }}", ["v": json(#"{"b": [1, 2.5, true, null], "a": "é\n"}"#)]),
                       #"{"b": [1, 2.5, true, null], "a": "é\n"}"#)
        XCTAssertEqual(try render("{{ v | tojson(indent=2) }}", ["v": json(#"{"a": [1]}"#)]), "{\n  \"a\": [\n    1\n  ]\n}")
        XCTAssertEqual(try render("{{ v | tojson(sort_keys=true, separators=(',', ':')) }}", ["v": json(#"{"b": 1, "a": 2}"#)]), #"{"a":2,"b":1}"#)
        let msgs = json(#"[{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]"#)
        XCTAssertEqual(try render("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }} {{ msgs | rejectattr('role', 'eq', 'user') | list | length }}",
                                  ["msgs": msgs]), "u1,u2 1")
        XCTAssertEqual(try render("{{ ['b', 'A', 'a'] | unique | list }} {{ ['b', 'A', 'c'] | sort }} {{ [1, 2, 3] | sum }} {{ 'a\nb' | indent(2, true) }}"),
                       "['b', 'A'] ['A', 'b', 'c'] 6   a\n  b")
        XCTAssertEqual(try render("{{ '42' | int }} {{ 'x' | int(7) }} {{ 2.5 | round }} {{ 2.567 | round(2) }} {{ '<&>' | e }}"), "42 7 2.0 2.57 &lt;&amp;&gt;")
        // generators: truthy even when empty, no len()
        XCTAssertEqual(try render("{% if msgs | selectattr('role', 'equalto', 'x') %}truthy{% endif %}", ["msgs": msgs]), "truthy")
        XCTAssertThrowsError(try render("{{ msgs | selectattr('role') | length }}", ["msgs": msgs]))
    }

    func testTestsAndMethods() throws {
        XCTAssertEqual(try render("{{ x is defined }}{{ y is undefined }}{{ n is none }}{{ 1 is number }}{{ true is integer }}{{ 's' is string }}{{ d is mapping }}{{ 1 is iterable }}",
                                  ["x": .int(1), "n": .none, "d": json("{}")]), "TrueTrueTrueTrueFalseTrueTrueFalse")
        XCTAssertEqual(try render("{{ 9 is divisibleby 3 }}{{ 'a' is in 'abc' }}{{ 2 is eq 2 }}{{ x is true }}{{ 1 is true }}{{ x is not none }}", ["x": .bool(true)]),
                       "TrueTrueTrueTrueFalseTrue")
        XCTAssertEqual(try render("[{{ '  a b  '.strip() }}]{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ ' a  b '.split() }}{{ 'hello'.endswith(('x', 'lo')) }}"),
                       "[a b]['a', 'b,c']['a,b', 'c']['a', 'b']True")
        XCTAssertEqual(try render("{{ d.get('z', 'def') }} {{ d.keys() | list }} {{ '{} and {}'.format('a', 1) }}", ["d": json(#"{"a": 1}"#)]),
                       "def ['a'] a and 1")
        XCTAssertThrowsError(try render("{% set xs = [] %}{{ xs.append(1) }}")) { e in
            XCTAssertEqual((e as? JinjaError)?.kind, .security)
        }
        XCTAssertEqual(try render("{{ range(1, 7, 2) | list }} {{ dict(a=1) }}"), "[1, 3, 5] {'a': 1}")
    }

    func testUndefinedSemantics() throws {
        XCTAssertEqual(try render("[{{ missing }}][{{ d.missing }}][{{ xs[9] }}]{% if missing %}t{% else %}f{% endif %}{{ missing | length }}",
                                  ["d": json("{}"), "xs": json("[]")]), "[][][]f0")
        XCTAssertThrowsError(try render("line1\n{{ missing.attr }}")) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .undefined)
            XCTAssertEqual(je.line, 2)
            XCTAssertEqual(je.message, "'missing' is undefined")
        }
        XCTAssertThrowsError(try render("{{ d.a.b }}", ["d": json("{}")])) { e in
            XCTAssertEqual((e as! JinjaError).message, "'dict object' has no attribute 'a'")
        }
    }

    func testErrorsNameConstructAndLine() throws {
        XCTAssertThrowsError(try render("ok\n\n{{ x | frobnicate }}", ["x": .int(1)])) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .unsupported)
            XCTAssertEqual(je.line, 3)
            XCTAssertTrue(je.message.contains("frobnicate"), je.message)
            XCTAssertTrue(je.description.contains("t:3"), je.description)
        }
        XCTAssertThrowsError(try JinjaTemplate(source: "a\n{% include 'x.html' %}")) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .unsupported)
            XCTAssertEqual(je.line, 2)
            XCTAssertTrue(je.message.contains("include"))
        }
        XCTAssertThrowsError(try JinjaTemplate(source: "a\nb {% if x %}unclosed")) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .syntax)
            XCTAssertEqual(je.line, 2)
            XCTAssertTrue(je.message.contains("endif"), je.message)
        }
        XCTAssertThrowsError(try JinjaTemplate(source: "{{ 1 + }}")) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .syntax)
            XCTAssertEqual(je.column, 8)
        }
        XCTAssertThrowsError(try render("{{ raise_exception('Bad: ' ~ x) }}", ["x": .string("oops")])) { e in
            let je = e as! JinjaError
            XCTAssertEqual(je.kind, .raised)
            XCTAssertEqual(je.message, "Bad: oops")
        }
        XCTAssertThrowsError(try render("{{ 'a' + 1 }}")) { e in XCTAssertEqual((e as! JinjaError).kind, .type) }
    }

    func testGenerationSpansAndClock() throws {
        let t = try JinjaTemplate(source: "{% for m in msgs %}{% if m.role == 'assistant' %}A: {% generation %}{{ m.content }}<end>{% endgeneration %}\n{% else %}U: {{ m.content }}\n{% endif %}{% endfor %}")
        let r = try t.renderTracking(["msgs": json(#"[{"role": "user", "content": "hé"}, {"role": "assistant", "content": "yö ☕"}, {"role": "user", "content": "x"}, {"role": "assistant", "content": "ok"}]"#)])
        XCTAssertEqual(r.text, "U: hé\nA: yö ☕<end>U: x\nA: ok<end>")
        XCTAssertEqual(r.generationSpans, [9..<18, 26..<33])
        let bytes = Array(r.text.utf8)
        XCTAssertEqual(String(decoding: bytes[r.generationUTF8Spans[0]], as: UTF8.self), "yö ☕<end>")
        XCTAssertEqual(try render("{{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%B %-d, %A') }}"),
                       "2024-07-26 10:30 26 Jul 2024 July 26, Friday")
    }

    func testJSONInputAndNormalisation() throws {
        let data = #"[{"role": "user", "content": "hi", "n": 1, "f": 1.0, "b": true, "x": null}]"#.data(using: .utf8)!
        let any = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        let v = JinjaValue(json: any[0])
        XCTAssertEqual(try render("{{ m.n }} {{ m.f }} {{ m.b }} {{ m.x }} {{ m.b is boolean }} {{ m.n is integer }}", ["m": v]), "1 1.0 True None True True")
        let tool: [String: Any] = ["type": "function", "function": ["parameters": ["type": "object"], "name": "f", "description": "d"]]
        XCTAssertEqual(try render("{{ t | tojson }}", ["t": JinjaValue(json: tool)]),
                       #"{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}"#)
        let t = try HFChatTemplate(source: "{% for m in messages %}{{ m.role }}:{{ m.content }}|{{ m.x is defined }}|{{ m.thinking }}{% endfor %}{{ eos_token }}{{ bos_token is defined }}",
                                   name: "n", bosToken: nil, eosToken: "</s>")
        XCTAssertEqual(try t.render(messages: [["role": "user", "content": "hi", "x": NSNull(), "reasoning_content": "r"]], addGenerationPrompt: false),
                       "user:hi|False|r</s>False")
    }

    func testLoadModelFolder() throws {
        let dir = try TestSupport.tempDir()
        XCTAssertNil(try HFChatTemplate.load(folder: dir))
        let config = #"""
        {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "unk_token": "<unk>",
         "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}{{ unk_token }}"}]}
        """#
        try config.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let t = try XCTUnwrap(try HFChatTemplate.load(folder: dir))
        XCTAssertEqual(t.bosToken, "<s>")
        XCTAssertEqual(t.eosToken, "</s>")
        XCTAssertEqual(try t.render(messages: [["role": "user", "content": "a"]], addGenerationPrompt: true), "<s>[a]</s><unk>")
        try "{{ 'file' }}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try XCTUnwrap(try HFChatTemplate.load(folder: dir)).render(messages: [], addGenerationPrompt: false), "file")
    }
}

/// Byte-for-byte comparison with jinja2 on real chat templates (llama.cpp's models/templates plus a few classic
/// ones) and on small semantic snippets. Vectors: `python3 tools/vectors/jinja_vectors.py`.
final class JinjaVectorTests: XCTestCase {
    static let dir: URL = {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = (env?.isEmpty == false) ? URL(fileURLWithPath: env!)
            : FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return base.appendingPathComponent("jinja_vectors")
    }()

    static let errorKinds: [String: JinjaError.Kind] = [
        "TemplateError": .raised, "UndefinedError": .undefined, "TypeError": .type, "ValueError": .type,
        "IndexError": .type, "KeyError": .type, "AttributeError": .type, "ZeroDivisionError": .type,
        "SecurityError": .security, "TemplateSyntaxError": .syntax,
        "TemplateRuntimeError": .unsupported, "TemplateAssertionError": .unsupported,
    ]

    func load(_ file: String) throws -> [JinjaDict] {
        let url = Self.dir.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("Jinja test vectors missing at \(url.path): run python3 tools/vectors/jinja_vectors.py")
            return []
        }
        guard case .array(let items) = try JinjaValue.parseJSON(try String(contentsOf: url, encoding: .utf8)) else { return [] }
        return items.compactMap { if case .dict(let d) = $0 { return d }; return nil }
    }

    static func spans(_ v: JinjaValue?) -> [Range<Int>]? {
        guard case .array(let list)? = v else { return nil }
        return list.compactMap { s in
            guard case .array(let p) = s, p.count == 2, case .int(let a) = p[0], case .int(let b) = p[1] else { return nil }
            return a..<b
        }
    }

    /// Compares one outcome with the recorded jinja2 outcome; nil when they agree, else a description.
    static func check(_ outcome: Result<JinjaRendering, Error>, _ d: JinjaDict) -> String? {
        switch outcome {
        case .success(let r):
            guard case .string(let expected)? = d["expected"] else {
                return "jinja2 raised \(d["error_type"]?.pyStr ?? "?"): \(d["error"]?.pyStr ?? "") but Finch rendered"
            }
            if !r.text.unicodeScalars.elementsEqual(expected.unicodeScalars) {
                let a = Array(r.text.unicodeScalars), b = Array(expected.unicodeScalars)
                var i = 0
                while i < min(a.count, b.count) && a[i] == b[i] { i += 1 }
                let lo = max(0, i - 40)
                func cut(_ x: [Unicode.Scalar]) -> String { JinjaValue.pyStringRepr(String(String.UnicodeScalarView(x[lo..<min(x.count, i + 40)]))) }
                return "differs at scalar \(i): got \(cut(a)) want \(cut(b))"
            }
            if let want = spans(d["generation_spans"]), want != r.generationSpans {
                return "generation spans \(r.generationSpans) want \(want)"
            }
            return nil
        case .failure(let error):
            guard let je = error as? JinjaError else { return "non-Jinja error \(error)" }
            guard case .string(let type)? = d["error_type"], case .string(let message)? = d["error"] else {
                return "Finch raised \(je) but jinja2 rendered"
            }
            if Self.errorKinds[type] != je.kind { return "Finch raised \(je), jinja2 raised \(type): \(message)" }
            if je.kind == .raised && je.message != message { return "raised '\(je.message)', jinja2 raised '\(message)'" }
            return nil
        }
    }

    func testRealChatTemplates() throws {
        let cases = try load("cases.json")
        guard !cases.isEmpty else { return }
        var compiled: [String: String] = [:]
        var perTemplate: [String: (pass: Int, total: Int)] = [:]
        var failures: [String] = []
        for d in cases {
            guard case .string(let name)? = d["template"], case .string(let caseName)? = d["case"] else { continue }
            if compiled[name] == nil {
                compiled[name] = try String(contentsOf: Self.dir.appendingPathComponent("templates/\(name).jinja"), encoding: .utf8)
            }
            var bos: String? = nil, eos: String? = nil
            if case .string(let b)? = d["bos_token"] { bos = b }
            if case .string(let e)? = d["eos_token"] { eos = e }
            guard case .array(let messages)? = d["messages"] else { continue }
            var tools: [JinjaValue]? = nil
            if case .array(let t)? = d["tools"] { tools = t }
            var extra: [String: JinjaValue] = [:]
            if case .dict(let x)? = d["extra"] { for (k, v) in x.pairs { extra[k] = v } }
            let outcome = Result {
                try HFChatTemplate(source: compiled[name]!, name: name, bosToken: bos, eosToken: eos)
                    .renderTracking(messages: messages, addGenerationPrompt: d["add_generation_prompt"]?.truthy ?? false,
                                    tools: tools, extra: extra, now: fixedNow)
            }
            var p = perTemplate[name] ?? (0, 0)
            p.total += 1
            if let problem = Self.check(outcome, d) { failures.append("\(name) [\(caseName)]: \(problem)") } else { p.pass += 1 }
            perTemplate[name] = p
        }
        let full = perTemplate.values.filter { $0.pass == $0.total }.count
        print("Jinja vectors: \(full)/\(perTemplate.count) templates fully byte-identical; "
              + "\(perTemplate.values.map(\.pass).reduce(0, +))/\(cases.count) cases")
        for f in failures.prefix(30) { XCTFail(f) }
        XCTAssertEqual(full, perTemplate.count)
    }

    func testSemanticSnippets() throws {
        let snippets = try load("snippets.json")
        guard !snippets.isEmpty else { return }
        var passed = 0
        for d in snippets {
            guard case .string(let name)? = d["name"], case .string(let source)? = d["source"],
                  case .dict(let ctx)? = d["context"] else { continue }
            var context: [String: JinjaValue] = [:]
            for (k, v) in ctx.pairs { context[k] = v }
            let outcome = Result { try JinjaTemplate(source: source, name: name).renderTracking(context, now: fixedNow) }
            if let problem = Self.check(outcome, d) { XCTFail("snippet \(name): \(problem)") } else { passed += 1 }
        }
        print("Jinja snippets: \(passed)/\(snippets.count) agree with jinja2")
    }
}
