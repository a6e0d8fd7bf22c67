import VectorMath

// torch.nn.GroupNorm and torch.nn.LayerNorm. Statistics accumulate in Double in two passes (VectorMath's sums): the
// sums span up to a million values and float accumulation would drift from PyTorch's by more than our parity
// tolerance.

/// Maps that multiply and then shift a normalised feature map channel by channel and pixel by pixel, given at their
/// own resolution and read through nearest-neighbour upsampling (`F.interpolate(mode="nearest")`) at the map's: MoVQ's
/// SpatialNorm, `norm(f) * conv_y(zq) + conv_b(zq)`. Both [B, C, h, w] in the normalised map's layout.
public struct NearestModulation {
    public let scale: Tensor
    public let shift: Tensor

    public init(scale: Tensor, shift: Tensor) {
        shapeCheck(scale.rank == 4 && scale.shape == shift.shape && scale.layout == shift.layout,
                   "modulation: scale \(scale) and shift \(shift)")
        self.scale = scale
        self.shift = shift
    }

    /// For each row and column of an output `height` x `width`, the row and column of the maps it reads.
    func sourceIndices(height: Int, width: Int) -> (rows: [Int], columns: [Int32]) {
        (nearestSourceIndices(count: height, from: scale.dim(2)),
         nearestSourceIndices(count: width, from: scale.dim(3)).map { Int32($0) })
    }
}

/// GroupNorm over x [B, C, *spatial], then, in this order, the optional modulation (x must then be [B, C, H, W] in
/// the modulation's layout) and SiLU (every ResnetBlock2D applies one right after its norms), fused into the pass that
/// writes the result, so the upsampled modulation maps and the intermediate results are never stored. Each element
/// is rounded after each operation, as the unfused PyTorch operations round. The result keeps x's layout.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                      silu fuseSiLU: Bool = false, modulation: NearestModulation? = nil) -> Tensor {
    if let modulation {
        shapeCheck(x.rank == 4 && modulation.scale.dim(0) == x.dim(0) && modulation.scale.dim(1) == x.dim(1)
                   && modulation.scale.layout == x.layout, "groupNorm: \(x) modulated by \(modulation.scale)")
    }
    return Profile.measure(.normalization) {
        groupNormalize(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: fuseSiLU,
                       modulation: modulation)
    }
}

private func groupNormalize(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                            silu fuseSiLU: Bool, modulation: NearestModulation?) -> Tensor {
    let batch = x.dim(0), channels = x.dim(1)
    shapeCheck(channels % groups == 0, "groupNorm: \(channels) channels in \(groups) groups")
    if x.layout == .channelsLast {
        return groupNormalizeChannelsLast(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: fuseSiLU,
                                          modulation: modulation)
    }
    let spatial = x.count / (batch * channels)
    let perGroup = channels / groups
    let out = Tensor(shape: x.shape)
    let width = x.rank == 4 ? x.dim(3) : spatial
    let sources = modulation?.sourceIndices(height: spatial / width, width: width)
    parallelFor(batch * groups) { range in
        for bg in range {
            let g = bg % groups
            let base = bg * perGroup * spatial
            let n = perGroup * spatial
            let src = x.data + base, dst = out.data + base
            let mean = vm_sum(src, n) / Double(n)
            let sq = vm_sum_squared_deviations(src, n, mean)
            let invStd = 1.0 / (sq / Double(n) + Double(eps)).squareRoot()
            for c in 0..<perGroup {
                let ch = g * perGroup + c
                let scale = Float(invStd) * (weight?.data[ch] ?? 1)
                let shift = (bias?.data[ch] ?? 0) - Float(mean) * scale
                let s = src + c * spatial, d = dst + c * spatial
                if let modulation, let sources {
                    let mapPlane = (bg / groups * channels + ch) * modulation.scale.dim(2) * modulation.scale.dim(3)
                    for (row, sourceRow) in sources.rows.enumerated() {
                        let mapRow = mapPlane + sourceRow * modulation.scale.dim(3)
                        let rowStart = row * width
                        vm_modulate_row(s + rowStart, d + rowStart, width, scale, shift,
                                        modulation.scale.data + mapRow, modulation.shift.data + mapRow,
                                        sources.columns)
                        if fuseSiLU { vm_sigmoid_weighted(d + rowStart, d + rowStart, width, 1, 0, 1) }
                    }
                } else if fuseSiLU {
                    vm_sigmoid_weighted(s, d, spatial, scale, shift, 1)
                } else {
                    for i in 0..<spatial { d[i] = s[i] * scale + shift }
                }
            }
        }
    }
    return out
}

/// Channels-last group norm: each pixel holds all groups, so the statistics are summed per band of pixels into
/// per-channel partial sums (Double, one row of channels per band: that add runs along contiguous channels) and then
/// combined per group; mean first, then squared deviations, as the planar form does.
private func groupNormalizeChannelsLast(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                                        silu fuseSiLU: Bool, modulation: NearestModulation?) -> Tensor {
    let (batch, channels, pixels) = (x.dim(0), x.dim(1), x.dim(2) * x.dim(3))
    let perGroup = channels / groups
    let bands = min(pixels, 64)
    let partial = UnsafeMutablePointer<Double>.allocate(capacity: batch * bands * channels)
    defer { partial.deallocate() }
    let mean = UnsafeMutablePointer<Double>.allocate(capacity: batch * groups)
    defer { mean.deallocate() }
    let channelMean = UnsafeMutablePointer<Double>.allocate(capacity: batch * channels)
    defer { channelMean.deallocate() }
    let count = Double(perGroup * pixels)

    /// Sums x (or, given per-channel `centres` [batch * channels], (x - centre)^2) over each (batch, group) into
    /// `sums` [batch * groups], by bands on all threads.
    func groupSums(into sums: UnsafeMutablePointer<Double>, centres: UnsafePointer<Double>?) {
        parallelFor(batch * bands) { range in
            for job in range {
                let b = job / bands, band = job % bands
                let row = partial + job * channels
                row.update(repeating: 0, count: channels)
                let first = band * pixels / bands, end = (band + 1) * pixels / bands
                for pixel in first..<end {
                    vm_accumulate_channels(x.data + (b * pixels + pixel) * channels, channels,
                                           centres.map { $0 + b * channels }, row)
                }
            }
        }
        for bg in 0..<batch * groups {
            let b = bg / groups, g = bg % groups
            var sum = 0.0
            for band in 0..<bands {
                let groupPartials = partial + (b * bands + band) * channels + g * perGroup
                for c in 0..<perGroup { sum += groupPartials[c] }
            }
            sums[bg] = sum
        }
    }

    groupSums(into: mean, centres: nil)
    for bg in 0..<batch * groups { mean[bg] /= count }
    for bc in 0..<batch * channels { channelMean[bc] = mean[bc / channels * groups + bc % channels / perGroup] }
    let variance = UnsafeMutablePointer<Double>.allocate(capacity: batch * groups)
    defer { variance.deallocate() }
    groupSums(into: variance, centres: channelMean)

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
    let width = x.dim(3)
    let sources = modulation?.sourceIndices(height: x.dim(2), width: width)
    parallelFor(batch * pixels, minPerThread: 64) { range in
        for pixel in range {
            let b = pixel / pixels
            let src = x.data + pixel * channels, dst = out.data + pixel * channels
            let s = scale + b * channels, t = shift + b * channels
            if let modulation, let sources {
                let (mapHeight, mapWidth) = (modulation.scale.dim(2), modulation.scale.dim(3))
                let row = sources.rows[pixel % pixels / width], column = Int(sources.columns[pixel % width])
                let mapPixel = ((b * mapHeight + row) * mapWidth + column) * channels
                vm_modulate_channels(src, dst, channels, s, t, modulation.scale.data + mapPixel,
                                     modulation.shift.data + mapPixel)
            } else {
                for c in 0..<channels { dst[c] = src[c] * s[c] + t[c] }
            }
            if fuseSiLU { vm_sigmoid_weighted(dst, dst, channels, 1, 0, 1) }
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
            let mean = vm_sum(src, dim) / Double(dim)
            let sq = vm_sum_squared_deviations(src, dim, mean)
            let invStd = Float(1.0 / (sq / Double(dim) + Double(eps)).squareRoot())
            let m = Float(mean)
            for i in 0..<dim {
                dst[i] = (src[i] - m) * invStd * (weight?.data[i] ?? 1) + (bias?.data[i] ?? 0)
            }
        }
    }
    return out
}
