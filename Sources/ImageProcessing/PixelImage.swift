// An 8-bit image in memory: rows top to bottom, channels interleaved (1 = grey, 3 = RGB, 4 = RGBA).

public struct PixelImage: Equatable, Sendable {
    public var width: Int, height: Int, channels: Int
    public var pixels: [UInt8]
    /// A 16-bit grey image's own samples (a 16-bit grey PNG, which Pillow opens as mode I;16), one per pixel; nil
    /// for an 8-bit image. `pixels` then holds their high bytes, so 8-bit code reads the image as before.
    public var wideSamples: [UInt16]?

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "\(pixels.count) bytes for \(width)x\(height)x\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// A 16-bit grey image (channels 1).
    public init(width: Int, height: Int, wideSamples: [UInt16]) {
        precondition(wideSamples.count == width * height, "\(wideSamples.count) samples for \(width)x\(height)")
        self.init(width: width, height: height, channels: 1, pixels: wideSamples.map { UInt8($0 >> 8) })
        self.wideSamples = wideSamples
    }

    public init(width: Int, height: Int, channels: Int, filledWith v: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels, pixels: [UInt8](repeating: v, count: width * height * channels))
    }

    @inline(__always) public subscript(x: Int, y: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// Pillow's convert("RGB"): grey replicated; alpha dropped (composite first where that matters).
    public func rgb() -> PixelImage {
        if channels == 3 { return self }
        var out = PixelImage(width: width, height: height, channels: 3)
        for i in 0..<(width * height) {
            for c in 0..<3 { out.pixels[i * 3 + c] = channels < 3 ? pixels[i * channels] : pixels[i * channels + c] }
        }
        return out
    }

    /// Pillow's convert("L"): ITU-R 601-2 luma, L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
    public func grey() -> PixelImage {
        if channels == 1 { return self }
        if channels == 2 { return PixelImage(width: width, height: height, channels: 1, pixels: stride(from: 0, to: pixels.count, by: 2).map { pixels[$0] }) }
        var out = PixelImage(width: width, height: height, channels: 1)
        for i in 0..<(width * height) {
            let r = UInt32(pixels[i * channels]), g = UInt32(pixels[i * channels + 1]), b = UInt32(pixels[i * channels + 2])
            out.pixels[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
        }
        return out
    }
}
