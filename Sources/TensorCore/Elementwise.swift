// Element-wise arithmetic and layout changes (concat, split, transpose) on contiguous tensors.
#if canImport(Glibc)
import Glibc
#endif
import VectorMath

/// a += b (equal shapes; b is read in a's layout).
public func addInPlace(_ a: Tensor, _ b: Tensor) {
    shapeCheck(a.count == b.count, "add: \(a.shape) + \(b.shape)")
    let b = b.inLayout(of: a)
    let pa = a.data, pb = b.data
    parallelFor(a.count, minPerThread: 1 << 15) { r in for i in r { pa[i] += pb[i] } }
}

/// a * s + b * t as a new tensor in a's layout (equal shapes).
public func affineCombination(_ a: Tensor, _ s: Float, _ b: Tensor, _ t: Float) -> Tensor {
    shapeCheck(a.count == b.count, "combine: \(a.shape) and \(b.shape)")
    let b = b.inLayout(of: a)
    let out = Tensor(shape: a.shape, layout: a.layout)
    let pa = a.data, pb = b.data, po = out.data
    parallelFor(a.count, minPerThread: 1 << 15) { r in for i in r { po[i] = pa[i] * s + pb[i] * t } }
    return out
}

/// Concatenation along `axis`: of channels-last feature maps along channels in channels-last storage, else planar.
public func concat(_ parts: [Tensor], axis: Int) -> Tensor {
    let ax = axis < 0 ? parts[0].rank + axis : axis
    if ax == 1 && parts[0].layout == .channelsLast {
        return concatChannelsLast(parts.map { $0.channelsLast() })
    }
    let parts = parts.map { $0.planar() }
    let first = parts[0]
    for p in parts {
        shapeCheck(p.rank == first.rank && (0..<p.rank).allSatisfy { $0 == ax || p.shape[$0] == first.shape[$0] },
                   "concat on axis \(ax): \(parts.map(\.shape))")
    }
    var shape = first.shape
    shape[ax] = parts.reduce(0) { $0 + $1.shape[ax] }
    let out = Tensor(shape: shape)
    let outer = first.shape[..<ax].reduce(1, *)
    let inner = first.shape[(ax + 1)...].reduce(1, *)
    let outRow = shape[ax] * inner
    var offset = 0
    for p in parts {
        let len = p.shape[ax] * inner
        for o in 0..<outer { (out.data + o * outRow + offset).update(from: p.data + o * len, count: len) }
        offset += len
    }
    return out
}

/// [B, C1 + C2 + ..., H, W] from channels-last parts of equal B, H, W: each pixel's channels, part after part.
private func concatChannelsLast(_ parts: [Tensor]) -> Tensor {
    let first = parts[0]
    for p in parts {
        shapeCheck(p.dim(0) == first.dim(0) && p.dim(2) == first.dim(2) && p.dim(3) == first.dim(3),
                   "concat on channels: \(parts.map(\.shape))")
    }
    let channels = parts.reduce(0) { $0 + $1.dim(1) }
    let out = Tensor(shape: [first.dim(0), channels, first.dim(2), first.dim(3)], layout: .channelsLast)
    let pixels = first.dim(0) * first.dim(2) * first.dim(3)
    let partChannels = parts.map { $0.dim(1) }
    let partData = parts.map { UnsafePointer($0.data) }
    parallelFor(pixels, minPerThread: 256) { range in
        for pixel in range {
            var dst = out.data + pixel * channels
            for (source, width) in zip(partData, partChannels) {
                dst.update(from: source + pixel * width, count: width)
                dst += width
            }
        }
    }
    return out
}

/// Slice [start, start + length) along `axis`, copied (planar).
public func slice(_ x: Tensor, axis: Int, start: Int, length: Int) -> Tensor {
    let x = x.planar()
    let ax = axis < 0 ? x.rank + axis : axis
    shapeCheck(start >= 0 && start + length <= x.shape[ax],
               "slice \(start)..<\(start + length) of axis \(ax) in \(x.shape)")
    var shape = x.shape
    shape[ax] = length
    let out = Tensor(shape: shape)
    let outer = x.shape[..<ax].reduce(1, *)
    let inner = x.shape[(ax + 1)...].reduce(1, *)
    for o in 0..<outer {
        (out.data + o * length * inner).update(from: x.data + (o * x.shape[ax] + start) * inner, count: length * inner)
    }
    return out
}

/// torch.chunk along `axis` into `n` equal parts.
public func chunk(_ x: Tensor, _ n: Int, axis: Int) -> [Tensor] {
    let ax = axis < 0 ? x.rank + axis : axis
    shapeCheck(x.shape[ax] % n == 0, "chunk \(x.shape) axis \(ax) into \(n)")
    let len = x.shape[ax] / n
    return (0..<n).map { slice(x, axis: ax, start: $0 * len, length: len) }
}

/// [B, M, N] -> [B, N, M] (NCHW feature maps to token sequences and back).
public func transposeLastTwo(_ x: Tensor) -> Tensor {
    let m = x.dim(-2), n = x.dim(-1), batch = x.count / (m * n)
    var shape = x.shape
    shape[shape.count - 2] = n
    shape[shape.count - 1] = m
    let out = Tensor(shape: shape)
    for b in 0..<batch { transposeMatrix(x.data + b * m * n, rows: m, columns: n, into: out.data + b * m * n) }
    return out
}

/// x[b, c, :, :] += values[b, c] for a feature map x [B, C, H, W] in either layout (ResnetBlock2D's default time
/// embedding add).
public func addPerChannel(_ x: Tensor, _ values: Tensor) {
    let (batch, channels, pixels) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3))
    shapeCheck(values.count == batch * channels, "addPerChannel: \(values.shape) onto \(x.shape)")
    let px = x.data, pv = values.data
    switch x.layout {
    case .planar:
        parallelFor(batch * channels, minPerThread: 8) { r in
            for bc in r {
                let v = pv[bc], p = px + bc * pixels
                for i in 0..<pixels { p[i] += v }
            }
        }
    case .channelsLast:
        parallelFor(batch * pixels, minPerThread: 64) { r in
            for pixel in r {
                let p = px + pixel * channels, v = pv + pixel / pixels * channels
                for c in 0..<channels { p[c] += v[c] }
            }
        }
    }
}

/// x = SiLU(x * (1 + scale) + shift) with modulation [B, 2C] = (scale, shift) per channel, in either layout
/// (ResnetBlock2D's "scale_shift" time embedding, followed by its activation).
public func scaleShiftSiLU(_ x: Tensor, _ modulation: Tensor) {
    let (batch, channels, pixels) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3))
    shapeCheck(modulation.count == batch * 2 * channels, "scaleShift: \(modulation.shape) onto \(x.shape)")
    let px = x.data, pm = modulation.data
    switch x.layout {
    case .planar:
        parallelFor(batch * channels, minPerThread: 8) { r in
            for bc in r {
                let b = bc / channels, c = bc % channels
                let scale = 1 + pm[b * 2 * channels + c], shift = pm[b * 2 * channels + channels + c]
                let p = px + bc * pixels
                vm_sigmoid_weighted(p, p, pixels, scale, shift, 1)
            }
        }
    case .channelsLast:
        parallelFor(batch * pixels, minPerThread: 64) { r in
            for pixel in r {
                let p = px + pixel * channels, m = pm + pixel / pixels * 2 * channels
                for c in 0..<channels { p[c] = p[c] * (1 + m[c]) + m[channels + c] }
                vm_sigmoid_weighted(p, p, channels, 1, 0, 1)
            }
        }
    }
}
