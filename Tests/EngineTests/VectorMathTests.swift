// VectorMath's kernels against float64 math: exp to the ulp, softmax and SiLU to float32 rounding, and the rule that
// an element's result does not depend on where it sits in a span (a batch must give each image its own bits).
#if canImport(Glibc)
import Glibc
#endif
import VectorMath
import XCTest

final class VectorMathTests: XCTestCase {
    /// Distance in units in the last place between two positive normal floats.
    func ulps(_ a: Float, _ b: Float) -> Int { abs(Int(a.bitPattern) - Int(b.bitPattern)) }

    func testExpWithinTwoUlpsOfFloat64AcrossTheNormalRange() {
        var worst = (ulps: 0, x: Float(0))
        var x: Float = -87.3
        while x < 88.3 {
            let miss = ulps(vm_exp(x), Float(exp(Double(x))))
            if miss > worst.ulps { worst = (miss, x) }
            x += 0.000_731
        }
        XCTAssertLessThanOrEqual(worst.ulps, 2, "vm_exp(\(worst.x)) is \(worst.ulps) ulps from exp in float64")
        XCTAssertEqual(vm_exp(-.infinity), 0, "e^-inf (masked attention scores) must be exactly 0")
        XCTAssertEqual(vm_exp(-100), 0, "e^-100 is below the normal floats: 0")
        XCTAssertTrue(vm_exp(.nan).isNaN, "e^nan stays nan")
    }

    func testSoftmaxRowMatchesFloat64() {
        for count in [1, 15, 16, 77, 4096] {
            var row = (0..<count).map { Float(sin(Double($0) * 1.7)) * 30 }
            let maximum = row.map(Double.init).max()!
            let exps = row.map { exp(Double($0) - maximum) }
            let total = exps.reduce(0, +)
            vm_softmax_row(&row, count)
            for i in 0..<count {
                let expected = exps[i] / total
                // The float32 argument x - max carries a rounding of its own size times 2^-24, which e^x turns
                // into a relative error: far below the maximum, that dominates.
                let argumentRounding = Double(Float.ulpOfOne) * (4 - log(exps[i]))
                XCTAssertEqual(Double(row[i]), expected, accuracy: expected * argumentRounding + 1e-30,
                               "softmax of \(count) values, element \(i)")
            }
        }
    }

    func testSiLUMatchesFloat64AndIgnoresPosition() {
        let values = (0..<53).map { Float($0) * 0.37 - 9 }
        var alone = [Float](repeating: 0, count: values.count)
        vm_sigmoid_weighted(values, &alone, values.count, 1, 0, 1)
        for (i, v) in values.enumerated() {
            let expected = Double(v) / (1 + exp(-Double(v)))
            XCTAssertEqual(Double(alone[i]), expected, accuracy: abs(expected) * 1e-6 + 1e-30, "SiLU(\(v))")
        }
        // The same values placed 7 floats into a longer span: other ones fall in the vector loop and the tail.
        var shifted = [Float](repeating: 1, count: 7) + values + [Float](repeating: 2, count: 11)
        shifted.withUnsafeMutableBufferPointer { span in
            vm_sigmoid_weighted(span.baseAddress!, span.baseAddress!, span.count, 1, 0, 1)
        }
        for i in values.indices {
            XCTAssertEqual(shifted[7 + i].bitPattern, alone[i].bitPattern, "SiLU(\(values[i])) moved 7 places")
        }
    }

    func testSumsMatchFloat64() {
        let values = (0..<1001).map { Float(cos(Double($0) * 0.3)) * 5 + 2 }
        let sum = values.map(Double.init).reduce(0, +)
        XCTAssertEqual(vm_sum(values, values.count), sum, accuracy: abs(sum) * 1e-14, "sum of 1001 floats")
        let mean = sum / Double(values.count)
        let squares = values.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +)
        XCTAssertEqual(vm_sum_squared_deviations(values, values.count, mean), squares, accuracy: squares * 1e-14,
                       "squared deviations of 1001 floats")
    }
}
