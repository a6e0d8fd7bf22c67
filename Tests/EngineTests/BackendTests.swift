// The compute backend's own pieces: oneDNN's convolution and matmul primitives (the bf16 path's kernels, run here in
// float32 so
// every CPU exercises its layouts, reorders, bias and padding), weight layouts reused across shapes, and the
// bfloat16 rounding of the emulated path against torch's own float32 -> bfloat16 conversion.
import Checkpoint
import TensorCore
import XCTest

final class BackendTests: XCTestCase {
    /// Deterministic values in [-1, 1) (a fixed LCG: no expected number depends on them, both sides see the same
    /// input).
    func filled(_ shape: [Int], seed: UInt64) -> Tensor {
        let t = Tensor(shape: shape)
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        for i in 0..<t.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            t.data[i] = Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
        return t
    }

    struct ConvCase {
        let input: [Int], outChannels: Int, kernel: Int, stride: Int, padding: Padding2D, bias: Bool
    }

    /// Shapes the networks use: 3x3 and 1x1, stride 2 with MoVQ's bottom/right padding, no bias, batch 2, channel
    /// counts that do not fill a SIMD block.
    static let convCases = [
        ConvCase(input: [2, 16, 12, 10], outChannels: 24, kernel: 3, stride: 1, padding: .symmetric(1), bias: true),
        ConvCase(input: [1, 5, 9, 7], outChannels: 3, kernel: 3, stride: 1, padding: .symmetric(1), bias: false),
        ConvCase(input: [1, 32, 8, 8], outChannels: 64, kernel: 1, stride: 1, padding: .symmetric(0), bias: true),
        ConvCase(input: [2, 8, 11, 13], outChannels: 8, kernel: 3, stride: 2, padding: .bottomRight, bias: true),
        ConvCase(input: [1, 4, 16, 16], outChannels: 12, kernel: 3, stride: 2, padding: .symmetric(1), bias: true),
    ]

    /// oneDNN's convolution primitive computes what im2col + GEMM computes, to float32 summation-order rounding
    /// (1e-5 of the output scale: the two differ only in the order of K <= 216 products of values in [-1, 1)).
    func testConvolutionPrimitiveMatchesIm2colGEMM() throws {
        for (n, c) in Self.convCases.enumerated() {
            let x = filled(c.input, seed: UInt64(n))
            let w = filled([c.outChannels, c.input[1], c.kernel, c.kernel], seed: UInt64(100 + n))
            let bias = c.bias ? filled([c.outChannels], seed: UInt64(200 + n)) : nil
            let weight = Weight(w)
            let expected = conv2dIm2col(x, weightData: w.data, weightShape: w.shape, bias: bias, stride: c.stride,
                                        padding: c.padding)
            let ours = try XCTUnwrap(conv2dPrimitive(x, weight: weight, bias: bias, stride: c.stride,
                                                     padding: c.padding, precision: .fp32),
                                     "case \(n): oneDNN has no float32 convolution for \(c)")
            assertClose(ours, expected, "case \(n) conv \(c.input) k\(c.kernel) s\(c.stride) primitive vs im2col",
                        relTol: 1e-5)
        }
    }

    /// One Weight serves primitives of several input sizes (the laid-out copy is reused or laid out again).
    func testOneWeightServesSeveralShapes() throws {
        let w = filled([16, 8, 3, 3], seed: 7)
        let bias = filled([16], seed: 8)
        let weight = Weight(w)
        for (n, side) in [12, 20, 12, 7].enumerated() {
            let x = filled([1, 8, side, side], seed: UInt64(300 + n))
            let expected = conv2dIm2col(x, weightData: w.data, weightShape: w.shape, bias: bias, stride: 1,
                                        padding: .symmetric(1))
            let ours = try XCTUnwrap(conv2dPrimitive(x, weight: weight, bias: bias, stride: 1, padding: .symmetric(1),
                                                     precision: .fp32))
            assertClose(ours, expected, "input side \(side) (call \(n + 1)) with one shared weight", relTol: 1e-5)
        }
    }

    /// The linear layer, as shipped (sgemm) and as oneDNN's matmul primitive (the bf16 path's kernel, run in float32),
    /// against float64 sums: rows that are not a multiple of any block, with and without bias.
    func testLinearMatchesFloat64Sums() throws {
        for (n, (rows, inF, outF, hasBias)) in [(1, 7, 5, true), (77, 64, 96, false), (130, 33, 17,
            true)].enumerated() {
            let x = filled([rows, inF], seed: UInt64(400 + n))
            let w = filled([outF, inF], seed: UInt64(500 + n))
            let bias = hasBias ? filled([outF], seed: UInt64(600 + n)) : nil
            let expected = Tensor(shape: [rows, outF], filledWith: 0)
            for r in 0..<rows { for o in 0..<outF {
                var sum = Double(bias?.data[o] ?? 0)
                for i in 0..<inF { sum += Double(x.data[r * inF + i]) * Double(w.data[o * inF + i]) }
                expected.data[r * outF + o] = Float(sum)
            } }
            assertClose(linear(x, weight: Weight(w), bias: bias), expected,
                        "linear \(rows)x\(inF) -> \(outF) vs float64 sums", relTol: 1e-5)
            let primitive = try XCTUnwrap(linearPrimitive(x, weight: Weight(w), bias: bias, precision: .fp32))
            assertClose(primitive, expected, "matmul primitive \(rows)x\(inF) -> \(outF) vs float64 sums", relTol: 1e-5)
        }
    }

    /// The emulated bf16 path rounds as torch's .bfloat16() does (round to nearest even), on the dtype fixture.
    func testBFloat16RoundingMatchesTorch() throws {
        let f = try SafetensorsFile(path: Fixtures.path("dtypes.safetensors"))
        let expected = try Fixtures.tensors("dtypes_expected")
        let values = f.load(f.entries["f32"]!).copy()
        roundToBFloat16(values.data, count: values.count)
        assertClose(values, expected["bf16"]!, "f32 values rounded to bfloat16", relTol: 0)
    }
}
