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
