// libFuzzer harness: the strict workflow decoder (JSON syntax, keys, types, parameter values).
import Foundation
import FuzzSupport
import WorkflowFormat

@_cdecl("FuzzWorkflowFile_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzWorkflowFile(data ?? UnsafePointer(bitPattern: 1)!, size) }
}

private func fuzzWorkflowFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = try? WorkflowFile.parse(Data(bytes: data, count: size), name: "fuzz.json")
    return 0
}
