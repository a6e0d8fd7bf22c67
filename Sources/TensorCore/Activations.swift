// Element-wise activations, in place on a tensor's storage.
#if canImport(Glibc)
import Glibc
#endif
import VectorMath

public enum Activation: String, Sendable {
    case silu, gelu, quickGELU = "quick_gelu", relu

    /// The activation named by a transformers/diffusers config (`hidden_act`, `act_fn`).
    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "quick_gelu": self = .quickGELU
        case "relu": self = .relu
        default: return nil
        }
    }
}

public func applyActivation(_ act: Activation, _ x: Tensor) {
    let p = x.data
    parallelFor(x.count, minPerThread: 1 << 14) { r in
        switch act {
        case .silu: vm_sigmoid_weighted(p + r.lowerBound, p + r.lowerBound, r.count, 1, 0, 1)
        // Exact GELU: x * Phi(x), as torch.nn.functional.gelu(approximate="none").
        case .gelu: for i in r { let v = p[i]; p[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752)) }
        case .quickGELU: vm_sigmoid_weighted(p + r.lowerBound, p + r.lowerBound, r.count, 1, 0, 1.702)
        case .relu: for i in r { p[i] = max(p[i], 0) }
        }
    }
}

/// Returns act(x) as a new tensor.
public func activated(_ act: Activation, _ x: Tensor) -> Tensor {
    let y = x.copy()
    applyActivation(act, y)
    return y
}

/// Softmax over the last dimension, in place.
public func softmaxLastDim(_ x: Tensor) {
    let n = x.dim(-1), rows = x.count / n
    softmaxRows(x.data, rows: rows, cols: n)
}

@inline(__always)
func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    parallelFor(rows, minPerThread: 4) { range in
        for r in range { vm_softmax_row(p + r * cols, cols) }
    }
}
