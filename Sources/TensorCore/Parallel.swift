// Work splitting for the kernels that BLAS does not cover (norms, im2col, element-wise).
// BLAS calls are never made from inside `parallelFor`: OpenBLAS owns the cores during a GEMM and we own them
// in between, so the two thread pools never nest (docs/performance.md).
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

public enum Parallel {
    /// Worker count; defaults to the online processors, overridable with KANDINSKY_THREADS.
    public static let threads: Int = {
        if let s = getenv("KANDINSKY_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()
}

/// Runs `body(range)` over `0..<count` split into contiguous chunks, one per worker. Small jobs stay serial
/// because a fork-join costs more than `minPerThread` cheap items.
public func parallelFor(_ count: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let workers = min(Parallel.threads, max(1, count / max(minPerThread, 1)))
    if workers <= 1 || count <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(lo..<hi) }
        }
    }
}
