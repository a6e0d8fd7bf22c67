// The inpainting mask rules, one copy for every front end (the inpaint and outpaint plugins reach them through the
// model server's ABI 1.2 functions). In the order a run applies them:
//  1. binarise: the mask is resized to the working size with LANCZOS in its own mode, converted to grey (Pillow's
//     convert("L")) and thresholded at 0.5: white = repaint (diffusers' prepare_mask_and_masked_image, >= 0.19);
//     `inverted` swaps the meaning;
//  2. grow or shrink the repaint region by whole pixels (Euclidean disc: a pixel joins when its centre lies within
//     `grow` pixels of a repaint pixel's centre; a negative value removes pixels within that distance of a kept one);
//  3. that region conditions the diffusion;
//  4. keep_unmasked: the decoded picture is blended over the original with a weight that is 0 on every kept pixel
//     (byte-equal to the original) and rises linearly over `blur` pixels inside the repaint region to 1.
// Distances are exact squared Euclidean distances (Felzenszwalb and Huttenlocher, "Distance Transforms of Sampled
// Functions", Theory of Computing 8, 2012), so growing and feathering cost O(pixels) whatever the radius.

public enum InpaintMask {
    /// Repaint flags (row-major, width x height) from a mask picture of any size and channel count.
    public static func repaintRegion(of mask: PixelImage, width: Int, height: Int, inverted: Bool) -> [Bool] {
        let grey = mask.resized(width: width, height: height, filter: .lanczos, reducingGap: nil).grey()
        return grey.pixels.map { (Float($0) / 255 >= 0.5) != inverted }
    }

    /// The region grown by `pixels` (shrunk when negative); 0 returns it unchanged.
    public static func grown(_ repaint: [Bool], width: Int, height: Int, by pixels: Int) -> [Bool] {
        guard pixels != 0 else { return repaint }
        let radiusSquared = Double(pixels) * Double(pixels)
        if pixels > 0 {
            let toRepaint = squaredDistances(to: repaint, width: width, height: height)
            return toRepaint.map { $0 <= radiusSquared }
        }
        let toKept = squaredDistances(to: repaint.map { !$0 }, width: width, height: height)
        return zip(repaint, toKept).map { $0 && $1 > radiusSquared }
    }

    /// The weight of the generated picture per pixel: 0 where kept, min(1, distance to the nearest kept pixel /
    /// blur) where repainted (1 everywhere in the region when blur is 0 or nothing is kept).
    public static func blendWeights(_ repaint: [Bool], width: Int, height: Int, blur: Int) -> [Float] {
        guard blur > 0 else { return repaint.map { $0 ? 1 : 0 } }
        let toKept = squaredDistances(to: repaint.map { !$0 }, width: width, height: height)
        return zip(repaint, toKept).map { inside, squared in
            inside ? Float(min(1, squared.squareRoot() / Double(blur))) : 0
        }
    }

    /// picture = original + weight * (picture - original), rounded half to even per channel; a weight of 0 leaves
    /// the original's byte and 1 the picture's. Both images are RGB of one size; weights come from blendWeights.
    public static func composite(_ picture: inout PixelImage, over original: PixelImage, weights: [Float]) {
        precondition(picture.channels == 3 && original.channels == 3, "composite works on RGB pictures")
        precondition(picture.width == original.width && picture.height == original.height, "composite sizes differ")
        precondition(weights.count == picture.width * picture.height, "one weight per pixel")
        for (pixel, weight) in weights.enumerated() where weight < 1 {
            for channel in 0..<3 {
                let index = pixel * 3 + channel
                let base = Float(original.pixels[index])
                let blended = base + weight * (Float(picture.pixels[index]) - base)
                picture.pixels[index] = UInt8(blended.rounded(.toNearestOrEven))
            }
        }
    }

    /// A rectangle in pixels: columns x..<x + width, rows y..<y + height.
    public struct Box: Equatable, Sendable {
        public var x: Int, y: Int, width: Int, height: Int
        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    /// inpaint_area "masked": the repaint region's bounding box plus `padding` pixels on every side, widened
    /// (centred, then shifted to stay inside the picture) to the aspect ratio aspectWidth : aspectHeight of the size
    /// the crop is inpainted at. Where the picture is too small in one direction for that ratio the box takes the
    /// picture's whole side and the ratio is not reached (the crop is then stretched when scaled). nil when nothing
    /// is repainted.
    public static func cropBox(
        _ repaint: [Bool], width: Int, height: Int, padding: Int, aspectWidth: Int, aspectHeight: Int
    ) -> Box? {
        var (left, top, right, bottom) = (width, height, -1, -1)
        for y in 0..<height {
            for x in 0..<width where repaint[y * width + x] {
                left = min(left, x)
                right = max(right, x)
                top = min(top, y)
                bottom = max(bottom, y)
            }
        }
        guard right >= 0 else { return nil }
        let padded = Box(
            x: max(left - padding, 0), y: max(top - padding, 0),
            width: min(right + padding, width - 1) - max(left - padding, 0) + 1,
            height: min(bottom + padding, height - 1) - max(top - padding, 0) + 1)
        var box = padded
        // Compare width / height with aspectWidth / aspectHeight in integers; widen the short side, rounding up.
        if box.width * aspectHeight < box.height * aspectWidth {
            box.width = min((box.height * aspectWidth + aspectHeight - 1) / aspectHeight, width)
        } else {
            box.height = min((box.width * aspectHeight + aspectWidth - 1) / aspectWidth, height)
        }
        box.x = min(max(padded.x - (box.width - padded.width) / 2, 0), width - box.width)
        box.y = min(max(padded.y - (box.height - padded.height) / 2, 0), height - box.height)
        return box
    }

    /// Squared Euclidean distance from every pixel centre to the nearest pixel where `targets` is true (infinity
    /// when there is none), by the separable lower-envelope transform: columns first, then rows.
    public static func squaredDistances(to targets: [Bool], width: Int, height: Int) -> [Double] {
        var distances = targets.map { $0 ? 0 : Double.infinity }
        var envelope = LowerEnvelope(capacity: max(width, height))
        for x in 0..<width {
            for y in 0..<height { envelope.values[y] = distances[y * width + x] }
            envelope.transform(count: height)
            for y in 0..<height { distances[y * width + x] = envelope.result[y] }
        }
        for y in 0..<height {
            for x in 0..<width { envelope.values[x] = distances[y * width + x] }
            envelope.transform(count: width)
            for x in 0..<width { distances[y * width + x] = envelope.result[x] }
        }
        return distances
    }

    /// One dimension of the transform, result[q] = min over p of (q - p)^2 + values[p], with its work buffers
    /// allocated once per picture.
    struct LowerEnvelope {
        var values: [Double], result: [Double]
        var parabolaAt: [Int], boundaries: [Double]

        init(capacity: Int) {
            values = [Double](repeating: 0, count: capacity)
            result = values
            parabolaAt = [Int](repeating: 0, count: capacity)
            boundaries = [Double](repeating: 0, count: capacity + 1)
        }

        /// Where the parabola rooted at `later` starts to lie below the one rooted at `earlier`.
        func crossing(_ earlier: Int, _ later: Int) -> Double {
            let rise = values[later] + Double(later * later) - values[earlier] - Double(earlier * earlier)
            return rise / Double(2 * (later - earlier))
        }

        mutating func transform(count: Int) {
            var parabolas = 0
            for position in 0..<count where values[position].isFinite {
                while parabolas > 0, crossing(parabolaAt[parabolas - 1], position) <= boundaries[parabolas - 1] {
                    parabolas -= 1
                }
                boundaries[parabolas] = parabolas == 0 ? -.infinity : crossing(parabolaAt[parabolas - 1], position)
                parabolaAt[parabolas] = position
                parabolas += 1
            }
            guard parabolas > 0 else {
                for q in 0..<count { result[q] = .infinity }
                return
            }
            boundaries[parabolas] = .infinity
            var current = 0
            for q in 0..<count {
                while boundaries[current + 1] < Double(q) { current += 1 }
                let root = parabolaAt[current]
                result[q] = Double((q - root) * (q - root)) + values[root]
            }
        }
    }
}
