// libFuzzer harness: PNG and JPEG decoding by content, with the header pixel limit the CLI applies (lowered here
// so that an accepted image stays small).
import Foundation
import FuzzSupport
import ImageIO

private let path: String = {
    setenv(ImageFiles.maxPixelsVariable, "4000000", 1)
    return NSTemporaryDirectory() + "kd-fuzz-image-\(getpid())"
}()

@_cdecl("FuzzImageFiles_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzImageFiles(data ?? UnsafePointer(bitPattern: 1)!, size) }
}

private func fuzzImageFiles(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size))
    defer { unlink(path) }
    _ = try? ImageFiles.read(path)
    return 0
}
