// Spatial resampling of feature maps, in whichever layout they come (the result keeps it).

/// F.interpolate(scale_factor=2, mode="nearest").
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    interpolateNearest(x, height: x.dim(2) * 2, width: x.dim(3) * 2)
}

/// Along one axis of F.interpolate(mode="nearest") from `input` to `count` positions: the source index of each,
/// floor(dst * in / out) with the ratio in float, as PyTorch's legacy nearest mode computes it.
public func nearestSourceIndices(count: Int, from input: Int) -> [Int] {
    let ratio = Float(input) / Float(count)
    return (0..<count).map { min(Int((Float($0) * ratio).rounded(.down)), input - 1) }
}

/// F.interpolate(size=(height, width), mode="nearest").
public func interpolateNearest(_ x: Tensor, height: Int, width: Int) -> Tensor {
    let (bc, h, w) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
    let out = Tensor(shape: [x.dim(0), x.dim(1), height, width], layout: x.layout)
    let yIndex = nearestSourceIndices(count: height, from: h)
    let xIndex = nearestSourceIndices(count: width, from: w)
    if x.layout == .channelsLast {
        let channels = x.dim(1)
        parallelFor(x.dim(0) * height, minPerThread: 4) { r in
            for job in r {
                let b = job / height, oy = job % height
                let iy = yIndex[oy]
                let src = x.data + ((b * h + iy) * w) * channels
                let dst = out.data + ((b * height + oy) * width) * channels
                for ox in 0..<width { (dst + ox * channels).update(from: src + xIndex[ox] * channels, count: channels) }
            }
        }
        return out
    }
    parallelFor(bc * height, minPerThread: 64) { r in
        for job in r {
            let plane = job / height, oy = job % height
            let iy = yIndex[oy]
            let src = x.data + plane * h * w + iy * w, dst = out.data + plane * height * width + oy * width
            for ox in 0..<width { dst[ox] = src[xIndex[ox]] }
        }
    }
    return out
}

/// nn.AvgPool2d(2, 2) (floor mode: an odd last row/column is dropped).
public func avgPool2x2(_ x: Tensor) -> Tensor {
    let (bc, h, w) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
    let ho = h / 2, wo = w / 2
    let out = Tensor(shape: [x.dim(0), x.dim(1), ho, wo], layout: x.layout)
    if x.layout == .channelsLast {
        let channels = x.dim(1)
        parallelFor(x.dim(0) * ho, minPerThread: 4) { r in
            for job in r {
                let b = job / ho, oy = job % ho
                let s0 = x.data + ((b * h + 2 * oy) * w) * channels, s1 = s0 + w * channels
                let dst = out.data + ((b * ho + oy) * wo) * channels
                for ox in 0..<wo {
                    let a = s0 + 2 * ox * channels, c = s1 + 2 * ox * channels, d = dst + ox * channels
                    for k in 0..<channels { d[k] = (a[k] + a[channels + k] + c[k] + c[channels + k]) * 0.25 }
                }
            }
        }
        return out
    }
    parallelFor(bc * ho, minPerThread: 64) { r in
        for job in r {
            let plane = job / ho, oy = job % ho
            let s0 = x.data + plane * h * w + 2 * oy * w, s1 = s0 + w
            let dst = out.data + plane * ho * wo + oy * wo
            for ox in 0..<wo { dst[ox] = (s0[2 * ox] + s0[2 * ox + 1] + s1[2 * ox] + s1[2 * ox + 1]) * 0.25 }
        }
    }
    return out
}

/// How PyTorch's interpolation maps an output index to a source coordinate (ATen UpSample.h,
/// `area_pixel_compute_scale` and `area_pixel_compute_source_index`), in float as its CPU kernels compute it.
struct SourceCoordinates {
    let scale: Float
    let alignCorners: Bool
    let cubic: Bool

    init(input: Int, output: Int, alignCorners: Bool, cubic: Bool) {
        if alignCorners {
            scale = output > 1 ? Float(input - 1) / Float(output - 1) : 0
        } else {
            scale = Float(input) / Float(output)
        }
        self.alignCorners = alignCorners
        self.cubic = cubic
    }

    func source(_ index: Int) -> Float {
        if alignCorners { return scale * Float(index) }
        let src = scale * (Float(index) + 0.5) - 0.5
        // Linear modes clamp a negative coordinate to the first pixel; cubic keeps it (its taps are clamped instead).
        return !cubic && src < 0 ? 0 : src
    }
}

/// Per output index along one axis: the source indices (already clamped) and their weights.
struct InterpolationTaps {
    let taps: Int
    var indices: [Int]
    var weights: [Float]

    /// F.interpolate(mode="bilinear"): two taps, the second clamped to the last pixel.
    static func linear(input: Int, output: Int, alignCorners: Bool) -> InterpolationTaps {
        let coordinates = SourceCoordinates(input: input, output: output, alignCorners: alignCorners, cubic: false)
        var result = InterpolationTaps(taps: 2, indices: [], weights: [])
        for index in 0..<output {
            let real = coordinates.source(index)
            let first = Int(real)
            let second = first + (first < input - 1 ? 1 : 0)
            let lambda = min(max(real - Float(first), 0), 1)
            result.indices += [first, second]
            result.weights += [1 - lambda, lambda]
        }
        return result
    }

    /// F.interpolate(mode="bicubic", align_corners=False): Keys' cubic convolution with A = -0.75 on four taps,
    /// each clamped into the picture (ATen's `get_cubic_upsample_coefficients` and `upsample_get_value_bounded`).
    /// The fused multiply-adds are where PyTorch's CPU kernels have them (the compiler contracts its source so),
    /// found by comparing weights tap by tap with torch 2.15's: with them the weights are bit-identical.
    static func cubic(input: Int, output: Int) -> InterpolationTaps {
        let scale = Float(input) / Float(output)
        let a: Float = -0.75
        func near(_ x: Float) -> Float { ((-(a + 3)).addingProduct(a + 2, x) * x) * x + 1 }
        func far(_ x: Float) -> Float { (8 * a).addingProduct((-5 * a).addingProduct(a, x), x) * x - 4 * a }
        var result = InterpolationTaps(taps: 4, indices: [], weights: [])
        for index in 0..<output {
            let real = Float(-0.5).addingProduct(scale, Float(index) + 0.5)
            let first = min(Int(real.rounded(.down)), input - 1)
            let t = min(max(real - Float(first), 0), 1)
            result.weights += [far(t + 1), near(t), near(1 - t), far((1 - t) + 1)]
            result.indices += (-1...2).map { min(max(first + $0, 0), input - 1) }
        }
        return result
    }

    /// The weighted sum of one output's taps: for four taps fma(v3, w3, fma(v2, w2, fma(v0, w0, v1 * w1))), as
    /// PyTorch's compiled bicubic kernel sums them; two taps in order.
    @inline(__always)
    func sum(at output: Int, _ value: (Int) -> Float) -> Float {
        let base = output * taps
        if taps == 4 {
            let first = (value(indices[base + 1]) * weights[base + 1])
                .addingProduct(value(indices[base]), weights[base])
            return first.addingProduct(value(indices[base + 2]), weights[base + 2])
                .addingProduct(value(indices[base + 3]), weights[base + 3])
        }
        var total: Float = 0
        for tap in 0..<taps { total += value(indices[base + tap]) * weights[base + tap] }
        return total
    }
}

/// F.interpolate(x, size=(height, width), mode="bilinear", align_corners=...) on a planar [B, C, H, W] map.
public func interpolateBilinear(_ x: Tensor, height: Int, width: Int, alignCorners: Bool) -> Tensor {
    let rows = InterpolationTaps.linear(input: x.dim(2), output: height, alignCorners: alignCorners)
    let columns = InterpolationTaps.linear(input: x.dim(3), output: width, alignCorners: alignCorners)
    return interpolateSeparable(x.planar(), rows: rows, columns: columns)
}

/// F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False) on a planar [B, C, H, W] map.
public func interpolateBicubic(_ x: Tensor, height: Int, width: Int) -> Tensor {
    let rows = InterpolationTaps.cubic(input: x.dim(2), output: height)
    let columns = InterpolationTaps.cubic(input: x.dim(3), output: width)
    return interpolateSeparable(x.planar(), rows: rows, columns: columns)
}

/// Each output value sums its row taps of (its column taps of the input), as ATen's generic upsampling kernel
/// nests them (height outside, width inside).
private func interpolateSeparable(_ x: Tensor, rows: InterpolationTaps, columns: InterpolationTaps) -> Tensor {
    let (planes, inHeight, inWidth) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
    let height = rows.indices.count / rows.taps, width = columns.indices.count / columns.taps
    let out = Tensor(shape: [x.dim(0), x.dim(1), height, width])
    parallelFor(planes * height, minPerThread: 16) { range in
        for job in range {
            let plane = job / height, oy = job % height
            let source = x.data + plane * inHeight * inWidth
            let destination = out.data + plane * height * width + oy * width
            for ox in 0..<width {
                destination[ox] = rows.sum(at: oy) { row in
                    let line = source + row * inWidth
                    return columns.sum(at: ox) { line[$0] }
                }
            }
        }
    }
    return out
}
