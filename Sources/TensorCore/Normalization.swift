#if canImport(Glibc)
import Glibc
#endif

// torch.nn.GroupNorm and torch.nn.LayerNorm. Statistics accumulate in Double in two passes: the sums span up to
// a million values and float accumulation would drift from PyTorch's by more than our parity tolerance.

/// GroupNorm over x [B, C, *spatial]; optionally fused with SiLU (every ResnetBlock2D applies one right after). The
/// result keeps x's layout.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                      silu fuseSiLU: Bool = false) -> Tensor {
    Profile.measure(.normalization) { groupNormalize(x, groups: groups, weight: weight, bias: bias, eps: eps,
                                                     silu: fuseSiLU) }
}

private func groupNormalize(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                            silu fuseSiLU: Bool) -> Tensor {
    let batch = x.dim(0), channels = x.dim(1)
    shapeCheck(channels % groups == 0, "groupNorm: \(channels) channels in \(groups) groups")
    if x.layout == .channelsLast {
        return groupNormalizeChannelsLast(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: fuseSiLU)
    }
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

/// Channels-last group norm: each pixel holds all groups, so the statistics are summed per band of pixels (partial
/// sums in Double, one row of groups per band) and then combined; mean first, then squared deviations, as the planar
/// form does.
private func groupNormalizeChannelsLast(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                                        silu fuseSiLU: Bool) -> Tensor {
    let (batch, channels, pixels) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3))
    let perGroup = channels / groups
    let bands = min(pixels, 64)
    let partial = UnsafeMutablePointer<Double>.allocate(capacity: batch * bands * groups)
    defer { partial.deallocate() }
    let mean = UnsafeMutablePointer<Double>.allocate(capacity: batch * groups)
    defer { mean.deallocate() }
    let count = Double(perGroup * pixels)

    /// Sums x (or, given `centre`, (x - centre)^2) over each (batch, group) into `sums` [batch * groups], by bands
    /// on all threads.
    func groupSums(into sums: UnsafeMutablePointer<Double>, centre: UnsafePointer<Double>?) {
        parallelFor(batch * bands) { range in
            for job in range {
                let b = job / bands, band = job % bands
                let row = partial + job * groups
                row.update(repeating: 0, count: groups)
                let first = band * pixels / bands, end = (band + 1) * pixels / bands
                for pixel in first..<end {
                    let values = x.data + (b * pixels + pixel) * channels
                    for g in 0..<groups {
                        let group = values + g * perGroup
                        var sum = 0.0
                        if let centre {
                            let m = centre[b * groups + g]
                            for c in 0..<perGroup { let d = Double(group[c]) - m; sum += d * d }
                        } else {
                            for c in 0..<perGroup { sum += Double(group[c]) }
                        }
                        row[g] += sum
                    }
                }
            }
        }
        for bg in 0..<batch * groups {
            let b = bg / groups, g = bg % groups
            var sum = 0.0
            for band in 0..<bands { sum += partial[(b * bands + band) * groups + g] }
            sums[bg] = sum
        }
    }

    groupSums(into: mean, centre: nil)
    for bg in 0..<batch * groups { mean[bg] /= count }
    let variance = UnsafeMutablePointer<Double>.allocate(capacity: batch * groups)
    defer { variance.deallocate() }
    groupSums(into: variance, centre: mean)

    // Per (batch, channel): y = x * scale + shift.
    let scale = UnsafeMutablePointer<Float>.allocate(capacity: batch * channels)
    defer { scale.deallocate() }
    let shift = UnsafeMutablePointer<Float>.allocate(capacity: batch * channels)
    defer { shift.deallocate() }
    for b in 0..<batch {
        for ch in 0..<channels {
            let bg = b * groups + ch / perGroup
            let invStd = Float(1.0 / (variance[bg] / count + Double(eps)).squareRoot())
            let channelScale = invStd * (weight?.data[ch] ?? 1)
            scale[b * channels + ch] = channelScale
            shift[b * channels + ch] = (bias?.data[ch] ?? 0) - Float(mean[bg]) * channelScale
        }
    }
    let out = Tensor(shape: x.shape, layout: .channelsLast)
    parallelFor(batch * pixels, minPerThread: 64) { range in
        for pixel in range {
            let b = pixel / pixels
            let src = x.data + pixel * channels, dst = out.data + pixel * channels
            let s = scale + b * channels, t = shift + b * channels
            if fuseSiLU {
                for c in 0..<channels { let v = src[c] * s[c] + t[c]; dst[c] = v / (1 + expf(-v)) }
            } else {
                for c in 0..<channels { dst[c] = src[c] * s[c] + t[c] }
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
