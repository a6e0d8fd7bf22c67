// Pillow's Image.resize, bit-exact with Pillow >= 13.0 (src/libImaging/Resample.c, Reduce.c and Image.resize in
// src/PIL/Image.py). 8-bit images: the optional reduce() pre-step for reducing_gap, float32 boxes, fixed-point
// (22-bit) separable passes with a uint8 intermediate, and Pillow 13's choice of pass order. 16-bit grey (mode
// I;16): the same coefficients kept in double, each sum rounded half up and clipped to 0...65535 after each pass.
#if canImport(Glibc)
import Glibc
#endif

public enum ResampleFilter: Int, Sendable {
    case nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3

    var support: Double {
        switch self {
        case .nearest: return 0
        case .bilinear: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest: return 0
        case .bilinear:
            let t = abs(x)
            return t < 1 ? 1 - t : 0
        case .bicubic:
            let a = -0.5, t = abs(x)
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        case .lanczos:
            func sinc(_ v: Double) -> Double { v == 0 ? 1 : sin(v * Double.pi) / (v * Double.pi) }
            return (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0
        }
    }
}

extension PixelImage {
    /// Image.resize((width, height), resample: filter, reducing_gap: reducingGap).
    public func resized(width w: Int, height h: Int, filter: ResampleFilter, reducingGap: Double? = nil) -> PixelImage {
        precondition(w > 0 && h > 0, "resize to \(w)x\(h)")
        if w == width && h == height { return self }
        if let wideSamples {
            precondition(reducingGap == nil, "reducing_gap on a 16-bit image")
            let samples = Self.resizedWide(wideSamples, width, height, w, h, filter)
            return PixelImage(width: w, height: h, wideSamples: samples)
        }
        var source = self
        var box: (Float, Float, Float, Float) = (0, 0, Float(width), Float(height))
        if let gap = reducingGap, filter != .nearest {
            let fx = max(1, Int(Double(width) / Double(w) / gap)), fy = max(1, Int(Double(height) / Double(h) / gap))
            if fx > 1 || fy > 1 {
                source = reduced(fx, fy)
                box = (0, 0, Float(Double(width) / Double(fx)), Float(Double(height) / Double(fy)))
            }
        }
        if filter == .nearest { return source.nearest(w, h, box) }
        if box.0 == box.0.rounded(.towardZero), box.1 == box.1.rounded(.towardZero),
           box.2 - box.0 == Float(w), box.3 - box.1 == Float(h) {
            return source.cropped(x: Int(box.0), y: Int(box.1), width: w, height: h)
        }
        return source.resampled(w, h, box, filter)
    }

    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> PixelImage {
        var out = PixelImage(width: w, height: h, channels: channels)
        for row in 0..<h {
            let src = ((y + row) * width + x) * channels
            out.pixels.replaceSubrange(row * w * channels..<(row + 1) * w * channels, with: pixels[src..<src + w * channels])
        }
        return out
    }

    /// Image.reduce((fx, fy)): block means with Pillow's multiply-shift rounding; partial edge blocks included.
    func reduced(_ fx: Int, _ fy: Int) -> PixelImage {
        let ow = (width + fx - 1) / fx, oh = (height + fy - 1) / fy
        var out = PixelImage(width: ow, height: oh, channels: channels)
        for oy in 0..<oh {
            let bh = min(fy, height - oy * fy)
            for ox in 0..<ow {
                let bw = min(fx, width - ox * fx)
                let n = UInt32(bw * bh)
                let m = UInt32(Float(4_294_967_296.0) / Float(256 * n))
                for c in 0..<channels {
                    var s: UInt32 = 0
                    for yy in 0..<bh { for xx in 0..<bw { s += UInt32(self[ox * fx + xx, oy * fy + yy, c]) } }
                    out[ox, oy, c] = UInt8(truncatingIfNeeded: (UInt64(s + n / 2) * UInt64(m)) >> 24)
                }
            }
        }
        return out
    }

    /// The source index of each of `n` outputs under nearest-neighbour sampling of [b0, b1); -1 = none.
    static func nearestIndices(_ n: Int, _ b0: Float, _ b1: Float, _ limit: Int) -> [Int] {
        let a = Double(Float(b1 - b0)) / Double(n)
        var pos = Double(b0) + a * 0.5
        var out: [Int] = []
        for _ in 0..<n {
            out.append(pos < 0 ? -1 : min(Int(pos), limit - 1))
            pos += a
        }
        return out
    }

    func nearest(_ w: Int, _ h: Int, _ box: (Float, Float, Float, Float)) -> PixelImage {
        let xs = Self.nearestIndices(w, box.0, box.2, width), ys = Self.nearestIndices(h, box.1, box.3, height)
        var out = PixelImage(width: w, height: h, channels: channels)
        for (oy, sy) in ys.enumerated() where sy >= 0 {
            for (ox, sx) in xs.enumerated() where sx >= 0 {
                for c in 0..<channels { out[ox, oy, c] = self[sx, sy, c] }
            }
        }
        return out
    }

    /// One axis' normalised weights (Resample.c's precompute_coeffs): (first source index, weights) per output.
    static func weights(
        inSize: Int, in0: Float, in1: Float, outSize: Int, filter: ResampleFilter
    ) -> [(Int, [Double])] {
        let scale = Double(Float(in1 - in0)) / Double(outSize)
        let fs = max(scale, 1)
        let support = filter.support * fs
        let inv = 1.0 / fs
        return (0..<outSize).map { i in
            let center = Double(in0) + (Double(i) + 0.5) * scale
            let xmin = max(0, Int(center - support + 0.5))
            let xend = min(inSize, Int(center + support + 0.5))
            var w = (0..<max(0, xend - xmin)).map { j in filter.weight((Double(xmin + j) - center + 0.5) * inv) }
            var total = 0.0
            for v in w { total += v }
            if total != 0 { w = w.map { $0 / total } }
            return (xmin, w)
        }
    }

    /// One axis' fixed-point (22-bit) coefficients, as normalize_coeffs_8bpc rounds the weights.
    static func coefficients(
        inSize: Int, in0: Float, in1: Float, outSize: Int, filter: ResampleFilter
    ) -> [(Int, [Int32])] {
        weights(inSize: inSize, in0: in0, in1: in1, outSize: outSize, filter: filter).map { start, w in
            let k = w.map { v -> Int32 in
                Int32(v < 0 ? (v * 4_194_304 - 0.5).rounded(.towardZero) : (v * 4_194_304 + 0.5).rounded(.towardZero))
            }
            return (start, k)
        }
    }

    /// Which passes Pillow 13 runs, and whether the vertical one first (when it removes more than twice as many
    /// rows as the horizontal pass removes columns).
    static func passPlan(
        from size: (width: Int, height: Int), to w: Int, _ h: Int, box: (Float, Float, Float, Float)
    ) -> (horizontal: Bool, vertical: Bool, verticalFirst: Bool) {
        let needH = w != size.width || box.0 != 0 || box.2 != Float(w)
        let needV = h != size.height || box.1 != 0 || box.3 != Float(h)
        let dh = size.height - h
        let dw = size.width - w
        return (needH, needV, dh > 0 && dh > 2 * dw)
    }

    /// Runs the two passes in the order the plan says.
    static func inPassOrder(
        _ plan: (horizontal: Bool, vertical: Bool, verticalFirst: Bool), horizontal: () -> Void, vertical: () -> Void
    ) {
        if plan.verticalFirst {
            vertical()
            horizontal()
        } else {
            horizontal()
            vertical()
        }
    }

    func resampled(_ w: Int, _ h: Int, _ box: (Float, Float, Float, Float), _ filter: ResampleFilter) -> PixelImage {
        let plan = Self.passPlan(from: (width, height), to: w, h, box: box)
        var img = self
        func horizontal() {
            guard plan.horizontal else { return }
            let k = Self.coefficients(inSize: img.width, in0: box.0, in1: box.2, outSize: w, filter: filter)
            img = img.pass(horizontal: true, k)
        }
        func vertical() {
            guard plan.vertical else { return }
            let k = Self.coefficients(inSize: img.height, in0: box.1, in1: box.3, outSize: h, filter: filter)
            img = img.pass(horizontal: false, k)
        }
        Self.inPassOrder(plan, horizontal: horizontal, vertical: vertical)
        return img
    }

    /// Image.resize of a mode I;16 image (no box, no reducing_gap): nearest picks samples; the other filters run
    /// Resample.c's _16bpc passes.
    static func resizedWide(
        _ samples: [UInt16], _ width: Int, _ height: Int, _ w: Int, _ h: Int, _ filter: ResampleFilter
    ) -> [UInt16] {
        let box: (Float, Float, Float, Float) = (0, 0, Float(width), Float(height))
        if filter == .nearest {
            let xs = nearestIndices(w, box.0, box.2, width)
            let ys = nearestIndices(h, box.1, box.3, height)
            var out = [UInt16](repeating: 0, count: w * h)
            for (oy, sy) in ys.enumerated() where sy >= 0 {
                for (ox, sx) in xs.enumerated() where sx >= 0 { out[oy * w + ox] = samples[sy * width + sx] }
            }
            return out
        }
        let plan = passPlan(from: (width, height), to: w, h, box: box)
        var current = (samples: samples, width: width, height: height)
        func horizontal() {
            guard plan.horizontal else { return }
            let k = weights(inSize: current.width, in0: box.0, in1: box.2, outSize: w, filter: filter)
            current = (widePass(current.samples, current.width, current.height, horizontal: true, k), w, current.height)
        }
        func vertical() {
            guard plan.vertical else { return }
            let k = weights(inSize: current.height, in0: box.1, in1: box.3, outSize: h, filter: filter)
            current = (widePass(current.samples, current.width, current.height, horizontal: false, k), current.width, h)
        }
        Self.inPassOrder(plan, horizontal: horizontal, vertical: vertical)
        return current.samples
    }

    /// One separable pass over 16-bit samples, as _ImagingResampleHorizontal/Vertical_16bpc: a double sum in
    /// source order, ROUND_UP (half away from zero, truncated), clipped to 16 bits.
    static func widePass(
        _ samples: [UInt16], _ width: Int, _ height: Int, horizontal: Bool, _ coeffs: [(Int, [Double])]
    ) -> [UInt16] {
        let ow = horizontal ? coeffs.count : width
        let oh = horizontal ? height : coeffs.count
        var out = [UInt16](repeating: 0, count: ow * oh)
        samples.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let (start, k) = coeffs[horizontal ? x : y]
                        var sum = 0.0
                        for (j, kj) in k.enumerated() {
                            let index = horizontal ? y * width + start + j : (start + j) * width + x
                            sum += Double(src[index]) * kj
                        }
                        let rounded = sum >= 0 ? Int(sum + 0.5) : Int(sum - 0.5)
                        dst[y * ow + x] = UInt16(clamping: rounded)
                    }
                }
            }
        }
        return out
    }

    /// One separable pass writing uint8, as Pillow's ImagingResampleHorizontal/Vertical_8bpc.
    func pass(horizontal: Bool, _ coeffs: [(Int, [Int32])]) -> PixelImage {
        let ow = horizontal ? coeffs.count : width, oh = horizontal ? height : coeffs.count
        var out = PixelImage(width: ow, height: oh, channels: channels)
        let ch = channels, srcW = width
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let (start, k) = coeffs[horizontal ? x : y]
                        for c in 0..<ch {
                            var acc: Int32 = 1 << 21
                            for (j, kj) in k.enumerated() {
                                let sx = horizontal ? start + j : x, sy = horizontal ? y : start + j
                                acc &+= Int32(src[(sy * srcW + sx) * ch + c]) &* kj
                            }
                            dst[(y * ow + x) * ch + c] = UInt8(clamping: acc >> 22)
                        }
                    }
                }
            }
        }
        return out
    }
}
