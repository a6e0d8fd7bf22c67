// Matrix products, all handed to OpenBLAS. Row-major throughout; leading dimensions are element strides.
import COpenBLAS

/// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// torch.nn.Linear: x [..., in] -> [..., out] with weight [out, in] and optional bias [out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor { linear(x, weight: Weight(weight), bias: bias) }

public func linear(_ x: Tensor, weight: Weight, bias: Tensor?) -> Tensor {
    let inF = weight.dim(1), outF = weight.dim(0)
    shapeCheck(x.dim(-1) == inF, "linear: input \(x.shape) vs weight \(weight.shape)")
    let rows = x.count / inF
    let out = Tensor(shape: Array(x.shape.dropLast()) + [outF])
    if let bias {
        shapeCheck(bias.count == outF, "linear: bias \(bias.shape) vs weight \(weight.shape)")
        parallelFor(rows, minPerThread: 64) { r in
            for i in r { (out.data + i * outF).update(from: bias.data, count: outF) }
        }
    }
    weight.withFloat32 { w in
        sgemm(transB: true, m: rows, n: outF, k: inF, a: x.data, lda: inF, b: w, ldb: inF, beta: bias == nil ? 0 : 1, c: out.data, ldc: outF)
    }
    return out
}
