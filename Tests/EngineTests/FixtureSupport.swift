// Loading the committed fixtures (made by tools/make_fixtures.py) and comparing tensors with a message that
// names the tensor, the worst index and the size of the miss.
import Checkpoint
import Foundation
import TensorCore
import XCTest

enum Fixtures {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        return here.appendingPathComponent("Fixtures").path
    }()

    static func path(_ name: String) -> String { (root as NSString).appendingPathComponent(name) }
    static func model(_ name: String) -> String { path("models/" + name) }

    /// All tensors of `NAME.safetensors`, widened to float32.
    static func tensors(_ name: String) throws -> [String: Tensor] {
        let file = try SafetensorsFile(path: path(name + ".safetensors"))
        return file.entries.mapValues { file.load($0) }
    }

    static func json(_ name: String) throws -> Any {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try JSONSerialization.jsonObject(with: data)
    }
}

/// Fails unless every element of `actual` is within `relTol * max|expected|` (plus `absTol`) of `expected`.
func assertClose(_ actual: Tensor, _ expected: Tensor, _ name: String, relTol: Float = 1e-4, absTol: Float = 0,
                 file: StaticString = #filePath, line: UInt = #line) {
    // Compared by index in the logical NCHW order, whichever layout each is stored in.
    let actual = actual.planar(), expected = expected.planar()
    guard actual.shape == expected.shape else {
        XCTFail("\(name): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
        return
    }
    var scale: Float = 0
    for i in 0..<expected.count { scale = max(scale, abs(expected.data[i])) }
    var worst = 0
    var worstMiss: Float = -1
    for i in 0..<expected.count {
        let miss = abs(actual.data[i] - expected.data[i])
        if !(miss <= worstMiss) { worstMiss = miss.isNaN ? .infinity : miss; worst = i }
    }
    let tol = relTol * scale + absTol
    if !(worstMiss <= tol) {
        var idx: [Int] = []
        var rest = worst
        for d in expected.shape.reversed() { idx.insert(rest % d, at: 0); rest /= d }
        XCTFail("\(name)\(idx): got \(actual.data[worst]), expected \(expected.data[worst]); miss \(worstMiss) > tolerance \(tol) (\(relTol) x output scale \(scale))",
                file: file, line: line)
    }
}

func assertEqualInts(_ actual: [Int], _ expected: [Int], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    if actual != expected {
        let i = (0..<min(actual.count, expected.count)).first { actual[$0] != expected[$0] } ?? min(actual.count, expected.count)
        XCTFail("\(name): first difference at index \(i): got \(actual.count > i ? "\(actual[i])" : "end"), expected \(expected.count > i ? "\(expected[i])" : "end") (\(actual.count) vs \(expected.count) values)",
                file: file, line: line)
    }
}

func maxAbs(_ t: Tensor) -> Float { t.array.reduce(0) { max($0, abs($1)) } }
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.array, b.array).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
