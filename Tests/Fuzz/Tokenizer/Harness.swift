// libFuzzer harness: the CLIP tokenizer (text cleaning, byte-level BPE, truncation) on arbitrary UTF-8, with the
// fixture tokenizer's vocabulary.
import Foundation
import FuzzSupport
import Tokenization

private let tokenizer: CLIPTokenizer = {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("EngineTests/Fixtures/tokenizer").path
    do { return try CLIPTokenizer(folder: folder) } catch { fatalError("fuzz set-up: \(error)") }
}()

@_cdecl("FuzzTokenizer_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzTokenizer(data ?? UnsafePointer(bitPattern: 1)!, size) }
}

private func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = tokenizer.encode(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self))
    return 0
}
