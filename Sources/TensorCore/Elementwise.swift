// Element-wise arithmetic and layout changes (concat, split, transpose) on contiguous tensors.

/// a += b (equal shapes).
public func addInPlace(_ a: Tensor, _ b: Tensor) {
    shapeCheck(a.count == b.count, "add: \(a.shape) + \(b.shape)")
    let pa = a.data, pb = b.data
    parallelFor(a.count, minPerThread: 1 << 15) { r in for i in r { pa[i] += pb[i] } }
}

/// a * s + b * t as a new tensor (equal shapes).
public func affineCombination(_ a: Tensor, _ s: Float, _ b: Tensor, _ t: Float) -> Tensor {
    shapeCheck(a.count == b.count, "combine: \(a.shape) and \(b.shape)")
    let out = Tensor(shape: a.shape)
    let pa = a.data, pb = b.data, po = out.data
    parallelFor(a.count, minPerThread: 1 << 15) { r in for i in r { po[i] = pa[i] * s + pb[i] * t } }
    return out
}

/// Concatenation along `axis`.
public func concat(_ parts: [Tensor], axis: Int) -> Tensor {
    let first = parts[0]
    let ax = axis < 0 ? first.rank + axis : axis
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

/// Slice [start, start + length) along `axis`, copied.
public func slice(_ x: Tensor, axis: Int, start: Int, length: Int) -> Tensor {
    let ax = axis < 0 ? x.rank + axis : axis
    shapeCheck(start >= 0 && start + length <= x.shape[ax], "slice \(start)..<\(start + length) of axis \(ax) in \(x.shape)")
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
    let tile = 32
    parallelFor(batch * ((m + tile - 1) / tile)) { r in
        for job in r {
            let b = job / ((m + tile - 1) / tile), i0 = (job % ((m + tile - 1) / tile)) * tile
            let src = x.data + b * m * n, dst = out.data + b * m * n
            for j0 in stride(from: 0, to: n, by: tile) {
                for i in i0..<min(i0 + tile, m) {
                    for j in j0..<min(j0 + tile, n) { dst[j * m + i] = src[i * n + j] }
                }
            }
        }
    }
    return out
}
