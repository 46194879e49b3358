import Foundation
import XCTest
import FinchData

final class InspectorTests: XCTestCase {
    func testSummaryAndMarkedRecord() throws {
        let dir = try TestSupport.tempDir()
        let input = dir.appendingPathComponent("chat.jsonl")
        try """
        {"messages":[{"role":"user","content":"Name a colour."},{"role":"assistant","content":"Blue."},{"role":"user","content":"Another?"},{"role":"assistant","content":"Green."}]}

        """.write(to: input, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("ds")
        let m = try DatasetPacker.pack(DatasetPacker.Options(inputs: [input], maxLength: 256), tokenizer: TestSupport.tokenizer,
                                       template: try ChatTemplate.load("chatml"), into: out)
        let summary = DatasetInspector.summary(m)
        XCTAssertTrue(summary.contains("records 1, entries 1"), summary)
        XCTAssertTrue(summary.contains("truncated 0"), summary)
        XCTAssertTrue(summary.contains("#"), summary)
        let reader = try DatasetReader(out)
        let e = try XCTUnwrap(try reader.entry(containingRecord: 0))
        let text = try DatasetInspector.render(e, document: 0, tokenizer: TestSupport.tokenizer)
        XCTAssertEqual(text, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n[[Blue.<|im_end|>\n]]<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n[[Green.<|im_end|>\n]]")
        XCTAssertNil(try reader.entry(containingRecord: 5))
    }
}
