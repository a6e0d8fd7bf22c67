#if canImport(Glibc)
import Glibc
#endif

// torch.nn.GroupNorm and torch.nn.LayerNorm. Statistics accumulate in Double in two passes: the sums span up to
// a million values and float accumulation would drift from PyTorch's by more than our parity tolerance.

/// GroupNorm over x [B, C, *spatial]; optionally fused with SiLU (every ResnetBlock2D applies one right after).
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                      silu fuseSiLU: Bool = false) -> Tensor {
    Profile.measure(.normalization) { groupNormalize(x, groups: groups, weight: weight, bias: bias, eps: eps,
                                                     silu: fuseSiLU) }
}

private func groupNormalize(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                            silu fuseSiLU: Bool) -> Tensor {
    let batch = x.dim(0), channels = x.dim(1)
    shapeCheck(channels % groups == 0, "groupNorm: \(channels) channels in \(groups) groups")
    let spatial = x.count / (batch * channels)
    let perGroup = channels / groups
    let out = Tensor(shape: x.shape)
    parallelFor(batch * groups) { range in
        for bg in range {
            let g = bg % groups
            let base = bg * perGroup * spatial
            let n = perGroup * spatial
            let src = x.data + base, dst = out.data + base
            var sum = 0.0
            for i in 0..<n { sum += Double(src[i]) }
            let mean = sum / Double(n)
            var sq = 0.0
            for i in 0..<n { let d = Double(src[i]) - mean; sq += d * d }
            let invStd = 1.0 / (sq / Double(n) + Double(eps)).squareRoot()
            for c in 0..<perGroup {
                let ch = g * perGroup + c
                let scale = Float(invStd) * (weight?.data[ch] ?? 1)
                let shift = (bias?.data[ch] ?? 0) - Float(mean) * scale
                let s = src + c * spatial, d = dst + c * spatial
                if fuseSiLU {
                    for i in 0..<spatial { let v = s[i] * scale + shift; d[i] = v / (1 + expf(-v)) }
                } else {
                    for i in 0..<spatial { d[i] = s[i] * scale + shift }
                }
            }
        }
    }
    return out
}

/// LayerNorm over the last dimension.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    Profile.measure(.normalization) { layerNormalize(x, weight: weight, bias: bias, eps: eps) }
}

private func layerNormalize(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    let dim = x.dim(-1), rows = x.count / dim
    let out = Tensor(shape: x.shape)
    parallelFor(rows, minPerThread: 8) { range in
        for r in range {
            let src = x.data + r * dim, dst = out.data + r * dim
            var sum = 0.0
            for i in 0..<dim { sum += Double(src[i]) }
            let mean = sum / Double(dim)
            var sq = 0.0
            for i in 0..<dim { let d = Double(src[i]) - mean; sq += d * d }
            let invStd = Float(1.0 / (sq / Double(dim) + Double(eps)).squareRoot())
            let m = Float(mean)
            for i in 0..<dim {
                dst[i] = (src[i] - m) * invStd * (weight?.data[i] ?? 1) + (bias?.data[i] ?? 0)
            }
        }
    }
    return out
}
