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

    /// A 3x3 convolution of a nearest-upsampled map, as four 2x2 phase convolutions of the map itself, against
    /// upsampling and then convolving: to float32 summation rounding (the phase kernels sum up to four taps before
    /// multiplying), with and without bias, odd sizes, batch 2, and in bf16 (emulated or native, whichever this CPU
    /// runs) against the same mode's upsample-then-convolve: the two round different weights to bfloat16 (summed
    /// taps or single ones), each by up to 2^-9 of itself, so they may differ by a few 2^-9 of the output scale
    /// (measured: 2^-9); the bar is 2^-7.
    func testUpsampledConvolutionMatchesUpsampleThenConvolve() {
        for (n, (input, bias)) in [([2, 16, 5, 7], true), ([1, 8, 4, 4], false), ([1, 3, 1, 2], true)].enumerated() {
            let x = filled(input, seed: UInt64(400 + n))
            let w = filled([12, input[1], 3, 3], seed: UInt64(410 + n))
            let b = bias ? filled([12], seed: UInt64(420 + n)) : nil
            for (precision, tolerance) in [(Precision.fp32, Float(1e-5)), (.bf16, 1.0 / 128)] {
                let weight = Weight(w, precision: precision)
                let expected = conv2d(upsampleNearest2x(x), weight: weight, bias: b, padding: .symmetric(1))
                assertClose(conv2dOfUpsampled2x(x, weight: weight, bias: b), expected,
                            "case \(n): \(input) upsampled, \(precision)", relTol: tolerance)
            }
        }
    }

    /// The four phases of an upsampled convolution land on the pixels (2i + py, 2j + px), in both layouts.
    func testInterleavePhasesPlacesEachPhase() {
        let phases = (0..<4).map { filled([2, 5, 3, 4], seed: UInt64(430 + $0)) }
        for layout in [Layout.planar, .channelsLast] {
            let out = interleavePhases2x(phases.map { layout == .planar ? $0 : $0.channelsLast() }).planar()
            XCTAssertEqual(out.shape, [2, 5, 6, 8])
            for b in 0..<2 {
                for c in 0..<5 {
                    for y in 0..<6 {
                        for x in 0..<8 {
                            let phase = phases[y % 2 * 2 + x % 2]
                            let expected = phase.data[((b * 5 + c) * 3 + y / 2) * 4 + x / 2]
                            let got = out.data[((b * 5 + c) * 6 + y) * 8 + x]
                            if got != expected {
                                XCTFail("\(layout): pixel [\(b), \(c), \(y), \(x)] is \(got), expected \(expected)")
                                return
                            }
                        }
                    }
                }
            }
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

    /// Convolutions read and write channels-last feature maps (the bf16 path's layout, run here in float32 so every
    /// CPU exercises it) with the results of planar im2col + GEMM.
    func testChannelsLastConvolutionMatchesPlanar() throws {
        for (n, c) in Self.convCases.enumerated() {
            let x = filled(c.input, seed: UInt64(600 + n))
            let w = filled([c.outChannels, c.input[1], c.kernel, c.kernel], seed: UInt64(700 + n))
            let bias = c.bias ? filled([c.outChannels], seed: UInt64(800 + n)) : nil
            let expected = conv2dIm2col(x, weightData: w.data, weightShape: w.shape, bias: bias, stride: c.stride,
                                        padding: c.padding)
            for (input, output) in [(Layout.channelsLast, Layout.channelsLast), (.planar, .channelsLast)] {
                let ours = try XCTUnwrap(conv2dPrimitive(input == .planar ? x : x.channelsLast(), weight: Weight(w),
                                                         bias: bias, stride: c.stride, padding: c.padding,
                                                         precision: .fp32, outputLayout: output))
                XCTAssertEqual(ours.layout, output, "case \(n): output layout")
                assertClose(ours, expected, "case \(n) conv \(c.input) \(input) -> \(output) vs planar im2col",
                            relTol: 1e-5)
            }
        }
    }

    /// Every operation between the convolutions gives on a channels-last map what it gives on the planar one (group
    /// norm to the rounding of its float32 output: its Double sums are added in another order).
    func testChannelsLastOperationsMatchPlanar() {
        let x = filled([2, 64, 9, 7], seed: 900)
        let other = filled([2, 64, 9, 7], seed: 901)
        let weight = filled([64], seed: 902), bias = filled([64], seed: 903)
        let perChannel = filled([2, 64], seed: 904), modulation = filled([2, 128], seed: 905)
        let mapped = x.channelsLast()
        XCTAssertEqual(mapped.planar().array, x.array, "planar -> channels-last -> planar round trip")
        for silu in [false, true] {
            assertClose(groupNorm(mapped, groups: 32, weight: weight, bias: bias, eps: 1e-6, silu: silu),
                        groupNorm(x, groups: 32, weight: weight, bias: bias, eps: 1e-6, silu: silu),
                        "groupNorm(silu: \(silu)) channels-last vs planar", relTol: 1e-6)
        }
        assertClose(interpolateNearest(mapped, height: 13, width: 16), interpolateNearest(x, height: 13, width: 16),
                    "interpolateNearest to 13x16", relTol: 0)
        assertClose(avgPool2x2(mapped), avgPool2x2(x), "avgPool2x2 of an odd-sized map", relTol: 0)
        assertClose(concat([mapped, other.channelsLast()], axis: 1), concat([x, other], axis: 1),
                    "concat on channels", relTol: 0)
        assertClose(concat([mapped, other], axis: 1), concat([x, other], axis: 1),
                    "concat of a channels-last and a planar map", relTol: 0)
        let planarSum = x.copy(), mappedSum = mapped.copy()
        addInPlace(planarSum, other)
        addInPlace(mappedSum, other)
        assertClose(mappedSum, planarSum, "addInPlace of a planar map onto a channels-last one", relTol: 0)
        let planarBiased = x.copy(), mappedBiased = mapped.copy()
        addPerChannel(planarBiased, perChannel)
        addPerChannel(mappedBiased, perChannel)
        assertClose(mappedBiased, planarBiased, "addPerChannel", relTol: 0)
        let planarModulated = x.copy(), mappedModulated = mapped.copy()
        scaleShiftSiLU(planarModulated, modulation)
        scaleShiftSiLU(mappedModulated, modulation)
        assertClose(mappedModulated, planarModulated, "scaleShiftSiLU", relTol: 0)
        let tokens = mapped.pixelTokens()
        XCTAssertEqual(tokens.array, transposeLastTwo(x.reshaped([2, 64, 63])).array, "pixelTokens vs a transpose")
        XCTAssertEqual(tokens.pixelMap(height: 9, width: 7).planar().array, x.array, "pixelMap back to the map")
    }

    /// A group norm modulated through nearest upsampling (SpatialNorm's fused pass) gives, bit for bit, what the
    /// separate operations give: the norm, the upsampled maps, multiply, add, SiLU. Map sizes that divide the
    /// output's, that do not, and equal ones; both layouts.
    func testModulatedGroupNormEqualsTheSeparateOperations() {
        let x = filled([2, 64, 9, 8], seed: 910)
        let weight = filled([64], seed: 911), bias = filled([64], seed: 912)
        for mapSize in [[3, 4], [4, 3], [9, 8]] {
            let scale = filled([2, 64] + mapSize, seed: 913), shift = filled([2, 64] + mapSize, seed: 914)
            for layout in [Layout.planar, .channelsLast] {
                let input = layout == .planar ? x : x.channelsLast()
                let modulation = NearestModulation(scale: scale.inLayout(of: input), shift: shift.inLayout(of: input))
                for silu in [false, true] {
                    let fused = groupNorm(input, groups: 32, weight: weight, bias: bias, eps: 1e-6, silu: silu,
                                          modulation: modulation)
                    let separate = groupNorm(input, groups: 32, weight: weight, bias: bias, eps: 1e-6)
                    let upScale = interpolateNearest(modulation.scale, height: 9, width: 8)
                    let upShift = interpolateNearest(modulation.shift, height: 9, width: 8)
                    for i in 0..<separate.count {
                        separate.data[i] = separate.data[i] * upScale.data[i] + upShift.data[i]
                    }
                    if silu { applyActivation(.silu, separate) }
                    assertClose(fused, separate, "maps \(mapSize) to 9x8, \(layout), silu \(silu)",
                                relTol: 0)
                }
            }
        }
    }

    /// bf16 attention (bfloat16 q, k, v and probabilities, float32 sums and softmax; native or emulated, whichever
    /// this CPU runs) against float32 attention: each operand carries a relative rounding of at most 2^-9, and the
    /// output is a convex combination of values in [-1, 1), so the miss stays within a few times 2^-9 of the scale.
    func testBFloat16AttentionStaysNearFloat32() {
        for (n, (tokens, keys, heads, headDim, masked)) in [(77, 77, 2, 32, false), (130, 40, 1, 64, true)]
            .enumerated() {
            let q = filled([2, tokens, heads * headDim], seed: UInt64(1000 + n))
            let k = filled([2, keys, heads * headDim], seed: UInt64(1100 + n))
            let v = filled([2, keys, heads * headDim], seed: UInt64(1200 + n))
            let mask = masked ? filled([2, tokens, keys], seed: UInt64(1300 + n)) : nil
            let scale = 1 / Float(headDim).squareRoot()
            let reference = attention(q: q, k: k, v: v, heads: heads, scale: scale, mask: mask)
            let reduced = attention(q: q, k: k, v: v, heads: heads, scale: scale, mask: mask, precision: .bf16)
            assertClose(reduced, reference, "bf16 attention \(tokens)x\(keys) heads \(heads) mask \(masked)",
                        relTol: 8.0 / 512)
        }
    }

    /// The buffer pool hands a released buffer back for a request it fits, and its idle memory stays within the
    /// bound its acquire promises (a quarter of the peak live bytes plus the spare allowance, 0 here).
    func testMemoryPoolReusesAndBoundsIdleMemory() {
        let pool = MemoryPool(spareBytes: 0)
        let megabyte = 1 << 20
        let first = pool.acquire(bytes: 4 * megabyte)
        pool.release(first)
        let again = pool.acquire(bytes: 3 * megabyte)
        XCTAssertEqual(again, first, "a 3 MB request reuses the idle 4 MB buffer")
        pool.release(again)
        let larger = pool.acquire(bytes: 9 * megabyte)
        XCTAssertNotEqual(larger, first, "a 9 MB request does not fit the 4 MB buffer")
        pool.release(larger)
        var held: [UnsafeMutableRawPointer] = []
        for size in [2, 16, 5, 30, 7, 12, 3] { held.append(pool.acquire(bytes: size * megabyte)) }
        let peak = [2, 16, 5, 30, 7, 12, 3].reduce(0, +) * megabyte
        for buffer in held { pool.release(buffer) }
        for size in [40, 1, 64, 8] { pool.release(pool.acquire(bytes: size * megabyte)) }
        let bound = max(peak, 64 * megabyte) * 5 / 4
        XCTAssertLessThanOrEqual(pool.idleByteCount, bound, "idle bytes after a mix of sizes")
        pool.trim()
        XCTAssertEqual(pool.idleByteCount, 0, "idle bytes after trim()")
    }
}
