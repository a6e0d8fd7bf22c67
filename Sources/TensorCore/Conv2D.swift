// torch.nn.Conv2d (groups = 1, dilation 1): a oneDNN convolution primitive per shape, or, with the OpenBLAS backend,
// im2col + GEMM. Native bf16 writes channels-last feature maps (the layout its kernels run in, so the next
// convolution reads them without a transpose); every other path reads and writes planar NCHW. The im2col buffer
// covers a band of output rows at a time, bounded by `im2colBudget`, so a 768x768 MoVQ layer (128 channels x 9 taps
// x 590k pixels = 2.7 GB as one matrix) runs in tens of megabytes.

public struct Padding2D: Equatable, Sendable {
    public var top, bottom, left, right: Int
    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }
    public static func symmetric(_ p: Int) -> Padding2D { Padding2D(top: p, bottom: p, left: p, right: p) }
    /// F.pad(x, (0, 1, 0, 1)): one extra row at the bottom and column at the right (MoVQ's Downsample2D).
    public static let bottomRight = Padding2D(top: 0, bottom: 1, left: 0, right: 1)
}

/// Bytes of im2col scratch one band may use.
public let im2colBudget = 32 << 20

/// x [B, C, H, W], weight [O, C, kh, kw], bias [O] -> [B, O, Ho, Wo].
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Padding2D) -> Tensor {
    conv2d(x, weight: Weight(weight), bias: bias, stride: stride, padding: padding)
}

public func conv2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int = 1, padding: Padding2D) -> Tensor {
    Profile.measure(.convolution) { convolve(x, weight: weight, bias: bias, stride: stride, padding: padding) }
}

private func convolve(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
    let mode = executionMode(of: weight)
    if mode == .bf16Native, let out = conv2dPrimitive(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                                      precision: .bf16, outputLayout: .channelsLast) {
        return out
    }
    let x = x.planar()
    if ComputeBackend.current == .openblas && mode == .fp32 {
        return weight.withFloat32 { w in
            conv2dIm2col(x, weightData: w, weightShape: weight.shape, bias: bias, stride: stride, padding: padding)
        }
    }
    guard mode != .fp32 else {
        return conv2dGEMMPrimitive(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
    // bfloat16's numbers without its units: operands rounded to bf16, products and sums in float32.
    let rounded = bfloat16RoundedCopy(x)
    defer { MemoryPool.shared.releaseFloats(rounded) }
    let roundedInput = Tensor(shape: x.shape, borrowing: rounded, owner: x)
    return weight.withBFloat16RoundedFloat32 { w in
        let values = UnsafeMutablePointer(mutating: w)
        let roundedWeight = Weight(Tensor(shape: weight.shape, borrowing: values, owner: weight))
        return conv2dGEMMPrimitive(roundedInput, weight: roundedWeight, bias: bias, stride: stride, padding: padding)
    }
}

/// conv2d(upsampleNearest2x(x), weight 3x3, padding 1, stride 1), without the upsampled map. Each output pixel
/// (2i + py, 2j + px) reads source rows i - 1 + py ... i + py and columns likewise, and the 3x3 taps that land on the
/// same source pixel can be summed first: four 2x2 convolutions of x (one per phase py, px), each over x's own pixels,
/// then interleaved. That is 16 products per output pixel and input channel instead of 36, and no map four times the
/// size of x (MoVQ's upsamplers, the UNet's upsampling resnets). The sums of taps round once more in float32 than
/// the products they replace (a relative 6e-8 per tap): the parity tests' tolerances hold.
public func conv2dOfUpsampled2x(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
    shapeCheck(weight.shape.count == 4 && weight.dim(2) == 3 && weight.dim(3) == 3,
               "conv2dOfUpsampled2x: weight \(weight.shape) is not 3x3")
    let phases = weight.derived(phaseWeights)
    var outputs: [Tensor] = []
    for (phase, phaseWeight) in phases.enumerated() {
        let (py, px) = (phase / 2, phase % 2)
        let padding = Padding2D(top: 1 - py, bottom: py, left: 1 - px, right: px)
        outputs.append(conv2d(x, weight: phaseWeight, bias: bias, padding: padding))
    }
    return interleavePhases2x(outputs)
}

/// Rows (or columns) of the 3x3 kernel that the two taps of a 2x2 phase kernel sum, for the even (0) and odd (1)
/// output phase: an even output row reads source rows i - 1 (kernel row 0) and i (rows 1 and 2), an odd one rows i
/// (rows 0 and 1) and i + 1 (row 2).
private let phaseTaps = [[[0], [1, 2]], [[0, 1], [2]]]

/// The four phases' [O, C, 2, 2] kernels (py, px in row-major order), summed in float32 from the 3x3 one.
private func phaseWeights(of weight: Weight) -> [Weight] {
    let (outputs, inputs) = (weight.dim(0), weight.dim(1))
    return weight.withFloat32 { kernel in
        (0..<4).map { phase in
            let rows = phaseTaps[phase / 2], columns = phaseTaps[phase % 2]
            let derived = Tensor(shape: [outputs, inputs, 2, 2])
            parallelFor(outputs * inputs, minPerThread: 1024) { range in
                for pair in range {
                    let source = kernel + pair * 9, destination = derived.data + pair * 4
                    for a in 0..<2 {
                        for b in 0..<2 {
                            var sum: Float = 0
                            for ky in rows[a] { for kx in columns[b] { sum += source[ky * 3 + kx] } }
                            destination[a * 2 + b] = sum
                        }
                    }
                }
            }
            return Weight(derived, precision: weight.precision)
        }
    }
}

/// The map [B, C, 2H, 2W] whose pixel (2i + py, 2j + px) is pixel (i, j) of phases[2 py + px] [B, C, H, W]; in the
/// first phase's layout (a bf16 phase that oneDNN had no kernel for comes back planar).
public func interleavePhases2x(_ phases: [Tensor]) -> Tensor {
    let first = phases[0]
    let (batch, channels, height, width) = (first.dim(0), first.dim(1), first.dim(2), first.dim(3))
    shapeCheck(phases.count == 4 && phases.allSatisfy { $0.shape == first.shape },
               "interleavePhases2x: \(phases.map(\.shape))")
    let alike = phases.map { $0.inLayout(of: first) }
    let out = Tensor(shape: [batch, channels, 2 * height, 2 * width], layout: first.layout)
    if first.layout == .channelsLast {
        parallelFor(batch * height, minPerThread: 4) { range in
            for job in range {
                for phase in 0..<4 {
                    let (py, px) = (phase / 2, phase % 2)
                    let source = alike[phase].data + job * width * channels
                    let row = out.data + ((job / height * 2 * height + job % height * 2 + py) * 2 * width) * channels
                    for j in 0..<width {
                        (row + (2 * j + px) * channels).update(from: source + j * channels, count: channels)
                    }
                }
            }
        }
        return out
    }
    parallelFor(batch * channels * height, minPerThread: 16) { range in
        for job in range {
            let plane = job / height, i = job % height
            for phase in 0..<4 {
                let (py, px) = (phase / 2, phase % 2)
                let source = alike[phase].data + job * width
                let row = out.data + (plane * 2 * height + 2 * i + py) * 2 * width + px
                for j in 0..<width { row[2 * j] = source[j] }
            }
        }
    }
    return out
}

/// fp32: oneDNN's convolution on NCHW activations, which it runs as im2col + GEMM. Its direct (blocked-layout) kernels
/// are no faster here and sum each output in one long chain, landing 2-6x further from float64 (docs/performance.md).
private func conv2dGEMMPrimitive(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int,
                                 padding: Padding2D) -> Tensor {
    conv2dPrimitive(x, weight: weight, bias: bias, stride: stride, padding: padding, precision: .fp32,
                    plainLayout: true)!
}

/// The convolution as one oneDNN primitive (cached per shape, weights laid out as it asks), or nil where oneDNN has
/// no implementation for `precision`. `plainLayout` keeps the activations NCHW (oneDNN's GEMM-based kernels); else
/// the result is written in `outputLayout`.
public func conv2dPrimitive(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int, padding: Padding2D,
                            precision: Precision, plainLayout: Bool = false,
                            outputLayout: Layout = .planar) -> Tensor? {
    shapeCheck(!plainLayout || (x.layout == .planar && outputLayout == .planar),
               "conv2d: oneDNN's NCHW kernels on a channels-last \(x.shape)")
    shapeCheck(x.rank == 4 && weight.shape.count == 4 && x.dim(1) == weight.dim(1),
               "conv2d: input \(x.shape) vs weight \(weight.shape)")
    let (batch, cin, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    let (cout, kh, kw) = (weight.dim(0), weight.dim(2), weight.dim(3))
    let ho = (h + padding.top + padding.bottom - kh) / stride + 1
    let wo = (w + padding.left + padding.right - kw) / stride + 1
    shapeCheck(ho > 0 && wo > 0, "conv2d: input \(x.shape) too small for kernel \(weight.shape)")
    if let bias { shapeCheck(bias.count == cout, "conv2d: bias \(bias.shape) vs weight \(weight.shape)") }
    // In groups of SampleGroup.size images (both layouts hold each image contiguously): a batch's image then gets the
    // bits of its run alone. A batch that does not divide into groups has a smaller last one.
    let group = SampleGroup.callSize(samples: batch)
    func operation(_ images: Int) -> OpaquePointer? {
        let dims = [images, cin, h, w, cout, kh, kw, stride, padding.top, padding.bottom, padding.left, padding.right]
        return PrimitiveCache.shared.operation(
            OperationKey(kind: .convolution, dims: dims, precision: precision, bias: bias != nil,
                         plainLayout: plainLayout, inputLayout: x.layout, outputLayout: outputLayout))
    }
    guard let op = operation(group) else { return nil }
    let out = Tensor(shape: [batch, cout, ho, wo], layout: outputLayout)
    var failed = false
    SampleGroup.forEach(samples: batch) { first, count in
        guard let callOp = count == group ? op : operation(count) else {
            failed = true
            return
        }
        runOperation(callOp, src: x.data + first * cin * h * w, weight: weight, bias: bias,
                     dst: out.data + first * cout * ho * wo)
    }
    return failed ? nil : out
}

public func conv2dIm2col(_ x: Tensor, weightData: UnsafePointer<Float>, weightShape: [Int], bias: Tensor?, stride: Int,
                         padding: Padding2D) -> Tensor {
    shapeCheck(x.rank == 4 && weightShape.count == 4 && x.dim(1) == weightShape[1],
               "conv2d: input \(x.shape) vs weight \(weightShape)")
    let (batch, cin, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    let (cout, kh, kw) = (weightShape[0], weightShape[2], weightShape[3])
    let ho = (h + padding.top + padding.bottom - kh) / stride + 1
    let wo = (w + padding.left + padding.right - kw) / stride + 1
    shapeCheck(ho > 0 && wo > 0, "conv2d: input \(x.shape) too small for kernel \(weightShape)")
    let out = Tensor(shape: [batch, cout, ho, wo])
    let plane = ho * wo
    if let bias {
        shapeCheck(bias.count == cout, "conv2d: bias \(bias.shape) vs weight \(weightShape)")
        parallelFor(batch * cout, minPerThread: 16) { r in
            for i in r { (out.data + i * plane).update(repeating: bias.data[i % cout], count: plane) }
        }
    }
    let beta: Float = bias == nil ? 0 : 1
    let k = cin * kh * kw

    if kh == 1 && kw == 1 && stride == 1 && padding == .symmetric(0) {
        for b in 0..<batch {
            sgemm(m: cout, n: plane, k: cin, a: weightData, lda: cin, b: x.data + b * cin * h * w, ldb: h * w,
                  beta: beta, c: out.data + b * cout * plane, ldc: plane)
        }
        return out
    }

    let rowsPerBand = max(1, min(ho, im2colBudget / max(1, k * wo * 4)))
    let col = UnsafeMutablePointer<Float>.allocate(capacity: k * rowsPerBand * wo)
    defer { col.deallocate() }
    for b in 0..<batch {
        let src = x.data + b * cin * h * w
        var r0 = 0
        while r0 < ho {
            let rows = min(rowsPerBand, ho - r0)
            let n = rows * wo
            // Row (c, ky, kx) of the column matrix holds input pixel (c, oy*s - top + ky, ox*s - left + kx).
            parallelFor(k, minPerThread: 8) { range in
                for kk in range {
                    let c = kk / (kh * kw), ky = (kk / kw) % kh, kx = kk % kw
                    let dstRow = col + kk * n
                    let plane = src + c * h * w
                    for r in 0..<rows {
                        let iy = (r0 + r) * stride - padding.top + ky
                        let dst = dstRow + r * wo
                        if iy < 0 || iy >= h { dst.update(repeating: 0, count: wo); continue }
                        let line = plane + iy * w
                        if stride == 1 {
                            // Valid ox: 0 <= ox - left + kx < w.
                            let lo = max(0, padding.left - kx), hi = min(wo, w + padding.left - kx)
                            if lo > 0 { dst.update(repeating: 0, count: min(lo, wo)) }
                            if hi > lo { (dst + lo).update(from: line + (lo - padding.left + kx), count: hi - lo) }
                            if hi < wo { (dst + max(hi, 0)).update(repeating: 0, count: wo - max(hi, 0)) }
                        } else {
                            for ox in 0..<wo {
                                let ix = ox * stride - padding.left + kx
                                dst[ox] = (ix >= 0 && ix < w) ? line[ix] : 0
                            }
                        }
                    }
                }
            }
            sgemm(m: cout, n: n, k: k, a: weightData, lda: k, b: col, ldb: n,
                  beta: beta, c: out.data + b * cout * plane + r0 * wo, ldc: plane)
            r0 += rows
        }
    }
    return out
}
