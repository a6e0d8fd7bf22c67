// Spatial resampling of feature maps, in whichever layout they come (the result keeps it).

/// F.interpolate(scale_factor=2, mode="nearest").
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    interpolateNearest(x, height: x.dim(2) * 2, width: x.dim(3) * 2)
}

/// F.interpolate(size=(height, width), mode="nearest"): source index floor(dst * in / out), as PyTorch's
/// legacy nearest mode computes it in float.
public func interpolateNearest(_ x: Tensor, height: Int, width: Int) -> Tensor {
    let (bc, h, w) = (x.dim(0) * x.dim(1), x.dim(2), x.dim(3))
    let out = Tensor(shape: [x.dim(0), x.dim(1), height, width], layout: x.layout)
    let sy = Float(h) / Float(height), sx = Float(w) / Float(width)
    let xIndex = (0..<width).map { min(Int((Float($0) * sx).rounded(.down)), w - 1) }
    if x.layout == .channelsLast {
        let channels = x.dim(1)
        parallelFor(x.dim(0) * height, minPerThread: 4) { r in
            for job in r {
                let b = job / height, oy = job % height
                let iy = min(Int((Float(oy) * sy).rounded(.down)), h - 1)
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
            let iy = min(Int((Float(oy) * sy).rounded(.down)), h - 1)
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
