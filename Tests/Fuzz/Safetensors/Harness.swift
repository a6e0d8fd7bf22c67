// libFuzzer harness: safetensors files (header length, JSON header, dtypes, offsets) and sharded checkpoints'
// index files, through the same readers a model load uses. The first byte picks which.
import Checkpoint
import Foundation
import FuzzSupport

private let folder: String = {
    let path = NSTemporaryDirectory() + "kd-fuzz-safetensors-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

@_cdecl("FuzzSafetensors_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzSafetensors(data ?? UnsafePointer(bitPattern: 1)!, size) }
}

private func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let asIndex = size > 0 && data[0] & 1 == 1
    let path = folder + (asIndex ? "/diffusion_pytorch_model.safetensors.index.json" : "/model.safetensors")
    FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size))
    defer { unlink(path) }
    if asIndex {
        _ = try? WeightStore(folder: folder)
    } else if let file = try? SafetensorsFile(path: path) {
        for entry in file.entries.values { _ = file.load(entry) }
    }
    return 0
}
