// Matrix products, all handed to OpenBLAS. Row-major throughout; leading dimensions are element strides.
import COpenBLAS
import Foundation

/// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    let small = m * n * k < BLASThreads.singleThreadedBelow
    if small { BLASThreads.enter() }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    if small { BLASThreads.leave() }
}

/// Small products run on the calling thread alone. OpenBLAS splits any product above about 262k multiply-adds
/// across its workers; below a few million that costs more than it saves, and on a loaded machine (another process
/// on the cores) its spinning workers made a 64x64 text2img run 20-50 s instead of 1.7 s. OpenBLAS's thread count is
/// process-wide, so concurrent runs count how many of them are inside a small product.
enum BLASThreads {
    static let singleThreadedBelow = 1 << 24
    static let full = Int32(openblas_get_num_threads())
    private static let lock = NSLock()
    private static var inside = 0

    static func enter() {
        lock.lock(); defer { lock.unlock() }
        if inside == 0 { openblas_set_num_threads(1) }
        inside += 1
    }

    static func leave() {
        lock.lock(); defer { lock.unlock() }
        inside -= 1
        if inside == 0 { openblas_set_num_threads(full) }
    }
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
