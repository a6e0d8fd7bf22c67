// Matrix products: oneDNN (sgemm and matmul primitives) or, with KANDINSKY_BACKEND=openblas, OpenBLAS. Row-major
// throughout; leading dimensions are element strides.
import COpenBLAS
import DNNLBridge

/// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if ComputeBackend.current == .onednn {
        let status = kd_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b,
                              Int64(ldb),
                              beta, c, Int64(ldc))
        shapeCheck(status == 0, "sgemm: m \(m) n \(n) k \(k) lda \(lda) ldb \(ldb) ldc \(ldc)")
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// torch.nn.Linear: x [..., in] -> [..., out] with weight [out, in] and optional bias [out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor { linear(x, weight: Weight(weight),
    bias: bias) }

public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
    Profile.measure(.linear) { linearLayer(x, weight: weight, bias: bias) }
}

/// The checked shape of x [..., in] * weight [out, in]^T and its (uninitialised) output [..., out], with the rows of
/// one sample: x's first axis is the batch (for [B, in], each row is a sample).
private func linearShape(_ x: Tensor, weight: Weight, bias: Tensor?)
    -> (rows: Int, sampleRows: Int, inF: Int, outF: Int, out: Tensor)
{
    let inF = weight.dim(1), outF = weight.dim(0)
    shapeCheck(x.layout == .planar, "linear: a channels-last feature map \(x.shape) (use its pixelTokens())")
    shapeCheck(x.dim(-1) == inF, "linear: input \(x.shape) vs weight \(weight.shape)")
    if let bias { shapeCheck(bias.count == outF, "linear: bias \(bias.shape) vs weight \(weight.shape)") }
    let rows = x.count / inF
    let samples = x.shape.count >= 2 ? max(x.dim(0), 1) : 1
    return (rows, rows / samples, inF, outF, Tensor(shape: Array(x.shape.dropLast()) + [outF]))
}

/// The product in groups of SampleGroup.size samples (`sampleRows` rows each), so that a batch's image gets the
/// bits of its run alone; the weights are laid out or widened once for all the calls.
private func forEachGroup(rows: Int, sampleRows: Int, _ body: (_ firstRow: Int, _ rowCount: Int) -> Void) {
    SampleGroup.forEach(samples: rows / max(sampleRows, 1)) { first, count in
        body(first * sampleRows, count * sampleRows)
    }
}

private func linearLayer(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
    let mode = executionMode(of: weight)
    if mode == .bf16Native, let out = linearPrimitive(x, weight: weight, bias: bias, precision: .bf16) { return out }
    let (rows, sampleRows, inF, outF, out) = linearShape(x, weight: weight, bias: bias)
    if rows == 0 { return out }
    if mode == .fp32 {
        weight.withFloat32 { w in
            linearGEMM(x.data, weight: w, bias: bias, rows: rows, sampleRows: sampleRows, inFeatures: inF,
                       outFeatures: outF, out: out)
        }
        return out
    }
    // Emulated bf16: operands rounded to bfloat16, products and sums in float32.
    let rounded = bfloat16RoundedCopy(x)
    defer { MemoryPool.shared.releaseFloats(rounded) }
    weight.withBFloat16RoundedFloat32 { w in
        linearGEMM(rounded, weight: w, bias: bias, rows: rows, sampleRows: sampleRows, inFeatures: inF,
                   outFeatures: outF, out: out)
    }
    return out
}

/// The linear layer as one oneDNN matmul primitive (cached per shape, weights laid out once), or nil where oneDNN
/// has no implementation for `precision`. Used for bf16; in fp32 the layer is a plain sgemm on the weights as stored
/// (oneDNN's float32 matmul is that same GEMM, and a laid-out copy would double the memory of float32 weights).
public func linearPrimitive(_ x: Tensor, weight: Weight, bias: Tensor?, precision: Precision) -> Tensor? {
    let (rows, sampleRows, inF, outF, out) = linearShape(x, weight: weight, bias: bias)
    if rows == 0 { return out }
    var failed = false
    forEachGroup(rows: rows, sampleRows: sampleRows) { first, count in
        let key = OperationKey(kind: .linear, dims: [count, inF, outF], precision: precision, bias: bias != nil)
        guard let op = PrimitiveCache.shared.operation(key) else {
            failed = true
            return
        }
        runOperation(op, src: x.data + first * inF, weight: weight, bias: bias, dst: out.data + first * outF)
    }
    return failed ? nil : out
}

/// out [rows, outF] = x [rows, inF] * weight^T + bias through sgemm, one call per group of samples (`sampleRows`
/// rows each).
private func linearGEMM(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: Tensor?, rows: Int,
                        sampleRows: Int, inFeatures inF: Int, outFeatures outF: Int, out: Tensor) {
    if let bias {
        parallelFor(rows, minPerThread: 64) { r in
            for i in r { (out.data + i * outF).update(from: bias.data, count: outF) }
        }
    }
    forEachGroup(rows: rows, sampleRows: sampleRows) { first, count in
        sgemm(transB: true, m: count, n: outF, k: inF, a: x + first * inF, lda: inF, b: weight, ldb: inF,
              beta: bias == nil ? 0 : 1, c: out.data + first * outF, ldc: outF)
    }
}
