// Scaled dot-product attention over [batch, tokens, heads * headDim] tensors, computed one block of query rows
// at a time so that the score matrix of a 9,216-token image never exists whole. Its two products follow the layer's
// precision: float32 sgemm, or in bf16 mode bfloat16 operands (q, k, v and the softmax probabilities) with float32
// accumulation, on the CPU's bf16 units through oneDNN or emulated by rounding; the softmax itself stays float32.
import DNNLBridge

/// Query rows per block are chosen so a block's scores fit in this many floats.
public let attentionScoreBudget = 4 << 20

/// q [B, Nq, H*d], k and v [B, Nk, H*d]; mask: optional additive [B, Nq, Nk], shared by all heads; `precision` the
/// precision of the projections that made q, k and v. Returns softmax(q k^T * scale + mask) v as [B, Nq, H*d].
public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float, mask: Tensor? = nil,
                      precision: Precision = .fp32) -> Tensor {
    Profile.measure(.attention) {
        scaledDotProductAttention(q: q, k: k, v: v, heads: heads, scale: scale, mask: mask, precision: precision)
    }
}

/// How the two products run: the operands each reads, and what it does before the second.
private enum AttentionProducts {
    /// sgemm on float32 operands; `rounded` rounds the probabilities to bfloat16 first (emulated bf16, whose q, k
    /// and v are rounded copies).
    case float32(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, rounded: Bool)
    /// oneDNN bf16 matmuls on bfloat16 copies of q, k, v; `probabilities` holds one block's softmax in bf16.
    case bfloat16(q: UnsafePointer<UInt16>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>,
                  probabilities: UnsafeMutablePointer<UInt16>)
}

private func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float,
                                       mask: Tensor?, precision: Precision) -> Tensor {
    let batch = q.dim(0), nq = q.dim(1), hd = q.dim(2), nk = k.dim(1)
    shapeCheck(k.shape == [batch, nk, hd] && v.shape == k.shape && hd % heads == 0,
               "attention: q \(q.shape) k \(k.shape) v \(v.shape) heads \(heads)")
    if let mask { shapeCheck(mask.shape == [batch, nq, nk],
                             "attention: mask \(mask.shape) for q \(q.shape) k \(k.shape)") }
    let d = hd / heads
    let out = Tensor(shape: [batch, nq, hd])
    let block = max(1, min(nq, attentionScoreBudget / max(nk, 1)))
    let scores = MemoryPool.shared.acquireFloats(block * nk)
    defer { MemoryPool.shared.releaseFloats(scores) }
    var buffers: [UnsafeMutableRawPointer] = []
    defer { for buffer in buffers { MemoryPool.shared.release(buffer) } }
    func bfloat16Copy(_ t: Tensor) -> UnsafeMutablePointer<UInt16> {
        let copy = MemoryPool.shared.acquire(bytes: 2 * t.count).bindMemory(to: UInt16.self, capacity: t.count)
        buffers.append(UnsafeMutableRawPointer(copy))
        convertToBFloat16(t.data, count: t.count, into: copy)
        return copy
    }
    func roundedCopy(_ t: Tensor) -> UnsafePointer<Float> {
        let copy = bfloat16RoundedCopy(t)
        buffers.append(UnsafeMutableRawPointer(copy))
        return UnsafePointer(copy)
    }
    let products: AttentionProducts
    switch precision {
    case .fp32:
        products = .float32(q: q.data, k: k.data, v: v.data, rounded: false)
    case .bf16 where ComputeBackend.nativeBF16:
        let probabilities = MemoryPool.shared.acquire(bytes: 2 * block * nk)
        buffers.append(probabilities)
        products = .bfloat16(q: bfloat16Copy(q), k: bfloat16Copy(k), v: bfloat16Copy(v),
                             probabilities: probabilities.bindMemory(to: UInt16.self, capacity: block * nk))
    case .bf16:
        products = .float32(q: roundedCopy(q), k: roundedCopy(k), v: roundedCopy(v), rounded: true)
    }
    for b in 0..<batch {
        for h in 0..<heads {
            var r0 = 0
            while r0 < nq {
                let rows = min(block, nq - r0)
                // Offsets of this block's rows and this head's columns in q (and out), k and v.
                let qOffset = (b * nq + r0) * hd + h * d, kvOffset = b * nk * hd + h * d
                queryKeyScores(products, rows: rows, keys: nk, headDim: d, stride: hd, scale: scale,
                               qOffset: qOffset, kOffset: kvOffset, into: scores)
                if let mask {
                    let mrow = mask.data + (b * nq + r0) * nk
                    parallelFor(rows * nk, minPerThread: 1 << 14) { r in
                        for i in r { scores[i] += mrow[i] }
                    }
                }
                softmaxRows(scores, rows: rows, cols: nk)
                weightedValues(products, scores: scores, rows: rows, keys: nk, headDim: d, stride: hd,
                               vOffset: kvOffset, into: out.data + qOffset)
                r0 += rows
            }
        }
    }
    return out
}

/// scores [rows, keys] = scale * q_block k_head^T.
private func queryKeyScores(_ products: AttentionProducts, rows: Int, keys: Int, headDim: Int, stride: Int,
                            scale: Float, qOffset: Int, kOffset: Int, into scores: UnsafeMutablePointer<Float>) {
    switch products {
    case .float32(let q, let k, _, _):
        sgemm(transB: true, m: rows, n: keys, k: headDim, alpha: scale, a: q + qOffset, lda: stride, b: k + kOffset,
              ldb: stride, c: scores, ldc: keys)
    case .bfloat16(let q, let k, _, _):
        let op = matmulOperation(m: rows, n: keys, k: headDim, aStride: stride, bStride: stride, bTransposed: true,
                                 cStride: keys, alpha: scale)
        runMatmul(op, a: q + qOffset, b: k + kOffset, c: scores)
    }
}

/// out_block [rows, headDim] (row stride `stride`) = probabilities [rows, keys] v_head.
private func weightedValues(_ products: AttentionProducts, scores: UnsafeMutablePointer<Float>, rows: Int, keys: Int,
                            headDim: Int, stride: Int, vOffset: Int, into out: UnsafeMutablePointer<Float>) {
    switch products {
    case .float32(_, _, let v, let rounded):
        if rounded { roundToBFloat16(scores, count: rows * keys) }
        sgemm(m: rows, n: headDim, k: keys, a: scores, lda: keys, b: v + vOffset, ldb: stride, c: out, ldc: stride)
    case .bfloat16(_, _, let v, let probabilities):
        convertToBFloat16(scores, count: rows * keys, into: probabilities)
        let op = matmulOperation(m: rows, n: headDim, k: keys, aStride: keys, bStride: stride, bTransposed: false,
                                 cStride: stride, alpha: 1)
        runMatmul(op, a: probabilities, b: v + vOffset, c: out)
    }
}

private func matmulOperation(m: Int, n: Int, k: Int, aStride: Int, bStride: Int, bTransposed: Bool, cStride: Int,
                             alpha: Float) -> OpaquePointer {
    let dims = [m, n, k, aStride, bStride, bTransposed ? 1 : 0, cStride, Int(alpha.bitPattern)]
    let key = OperationKey(kind: .matmul, dims: dims, precision: .bf16, bias: false)
    guard let op = PrimitiveCache.shared.operation(key) else {
        fatalError("oneDNN: no bf16 matmul for attention \(dims) on a CPU that has bf16 units")
    }
    return op
}

private func runMatmul(_ op: OpaquePointer, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>,
                       c: UnsafeMutablePointer<Float>) {
    var message = [CChar](repeating: 0, count: 256)
    withWorkspace(for: op) { workspace in
        if kd_matmul_run(op, a, b, c, workspace, &message, message.count) != 0 {
            fatalError("oneDNN: \(String(cString: message))")
        }
    }
}
