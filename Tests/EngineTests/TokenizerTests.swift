// Token ids against transformers' CLIPTokenizer on 240 prompts (punctuation, digits, non-ASCII, over-long),
// with the pad token "!" (open_clip's tokenizer convention) and of the real kandinsky-2-2-prior ("<|endoftext|>").
import Tokenization
import XCTest

final class TokenizerTests: XCTestCase {
    func check(pad: String?, key: String) throws {
        let tok = try CLIPTokenizer(folder: Fixtures.path("tokenizer"), padToken: pad)
        let cases = try Fixtures.json("tokenizer_cases.json") as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cases.count, 200)
        for c in cases {
            let prompt = c["prompt"] as! String
            let (ids, mask) = tok.encode(prompt)
            assertEqualInts(ids, c["ids" + key] as! [Int], "ids of \(prompt.debugDescription)")
            assertEqualInts(mask, c["mask" + key] as! [Int], "mask of \(prompt.debugDescription)")
        }
    }

    func testMatchesTransformersWithBangPad() throws { try check(pad: nil, key: "") }
    func testMatchesTransformersWithEndOfTextPad() throws { try check(pad: "<|endoftext|>", key: "_eos_pad") }

    func testMissingFilesAreNamed() {
        XCTAssertThrowsError(try CLIPTokenizer(folder: "/nonexistent/tokenizer")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/tokenizer/vocab.json: file not found (a CLIP tokenizer folder needs vocab.json and merges.txt)")
        }
    }
}
