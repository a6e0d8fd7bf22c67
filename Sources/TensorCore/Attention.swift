// Scaled dot-product attention over [batch, tokens, heads * headDim] tensors, computed one block of query rows
// at a time so that the score matrix of a 9,216-token image never exists whole.

/// Query rows per block are chosen so a block's scores fit in this many floats.
public let attentionScoreBudget = 4 << 20

/// q [B, Nq, H*d], k and v [B, Nk, H*d]; mask: optional additive [B, Nq, Nk], shared by all heads.
/// Returns softmax(q k^T * scale + mask) v as [B, Nq, H*d].
public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float, mask: Tensor? = nil) -> Tensor {
    Profile.measure(.attention) { scaledDotProductAttention(q: q, k: k, v: v, heads: heads, scale: scale, mask: mask) }
}

private func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float,
                                       mask: Tensor?) -> Tensor {
    let batch = q.dim(0), nq = q.dim(1), hd = q.dim(2), nk = k.dim(1)
    shapeCheck(k.shape == [batch, nk, hd] && v.shape == k.shape && hd % heads == 0,
               "attention: q \(q.shape) k \(k.shape) v \(v.shape) heads \(heads)")
    if let mask { shapeCheck(mask.shape == [batch, nq, nk],
                             "attention: mask \(mask.shape) for q \(q.shape) k \(k.shape)") }
    let d = hd / heads
    let out = Tensor(shape: [batch, nq, hd])
    let block = max(1, min(nq, attentionScoreBudget / max(nk, 1)))
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * nk)
    defer { scores.deallocate() }
    for b in 0..<batch {
        let qb = q.data + b * nq * hd, kb = k.data + b * nk * hd, vb = v.data + b * nk * hd
        for h in 0..<heads {
            var r0 = 0
            while r0 < nq {
                let rows = min(block, nq - r0)
                sgemm(transB: true, m: rows, n: nk, k: d, alpha: scale, a: qb + r0 * hd + h * d, lda: hd,
                      b: kb + h * d, ldb: hd, c: scores, ldc: nk)
                if let mask {
                    let mrow = mask.data + (b * nq + r0) * nk
                    parallelFor(rows * nk, minPerThread: 1 << 14) { r in
                        for i in r { scores[i] += mrow[i] }
                    }
                }
                softmaxRows(scores, rows: rows, cols: nk)
                sgemm(m: rows, n: d, k: nk, a: scores, lda: nk, b: vb + h * d, ldb: hd,
                      c: out.data + (b * nq + r0) * hd + h * d, ldc: hd)
                r0 += rows
            }
        }
    }
    return out
}
