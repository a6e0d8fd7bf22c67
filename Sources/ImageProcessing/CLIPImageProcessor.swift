// transformers' CLIPImageProcessor on its PIL path (no torchvision): shortest side to `size` with bicubic
// resampling, centre crop, rescale by 1/255, normalise with the CLIP mean and std. Exact to the bit (transformers
// models/clip/image_processing_clip.py with image_transforms.resize on PIL images).
import Checkpoint
import Foundation
import TensorCore

public struct CLIPImageProcessor: Sendable {
    public var size = 224
    public var cropSize = 224
    public var mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var std: [Float] = [0.26862954, 0.26130258, 0.27577711]
    public var resample = ResampleFilter.bicubic

    public init() {}

    /// Reads image_processor/preprocessor_config.json.
    public init(configPath: String) throws {
        let c = try ConfigReader(path: configPath)
        func sizeValue(_ key: String, _ d: Int) throws -> Int {
            guard let v = c.values[key], !(v is NSNull) else { c.ignore([key]); return d }
            c.ignore([key])
            if let n = v as? NSNumber { return n.intValue }
            if let o = v as? [String: Any] {
                if let n = o["shortest_edge"] as? NSNumber { return n.intValue }
                if let hgt = o["height"] as? NSNumber, let wid = o["width"] as? NSNumber, hgt == wid { return hgt.intValue }
            }
            throw CheckpointError.unsupportedConfig(path: configPath, key: key, value: "\(v)")
        }
        size = try sizeValue("size", 224)
        cropSize = try sizeValue("crop_size", 224)
        mean = try c.doubles("image_mean", default: mean.map(Double.init)).map { Float($0) }
        std = try c.doubles("image_std", default: std.map(Double.init)).map { Float($0) }
        let r = try c.int("resample", default: 3)
        guard let f = ResampleFilter(rawValue: r) else { throw CheckpointError.unsupportedConfig(path: configPath, key: "resample", value: "\(r)") }
        resample = f
        for key in ["do_resize", "do_center_crop", "do_normalize", "do_rescale", "do_convert_rgb"] { try c.require(key, in: [true]) }
        try c.require("rescale_factor", in: [1.0 / 255.0, 0.00392156862745098])
        c.ignore(["feature_extractor_type", "image_processor_type", "processor_class", "default_to_square"])
        try c.finish()
    }

    /// RGB (or RGBA, composited on white) image -> pixel_values [1, 3, crop, crop].
    public func callAsFunction(_ image: PixelImage) -> Tensor {
        let rgb = image.channels == 4 ? image.compositedOnWhite() : image.rgb()
        let short = min(rgb.width, rgb.height), long = max(rgb.width, rgb.height)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        let (w, h) = rgb.width <= rgb.height ? (size, newLong) : (newLong, size)
        let resized = rgb.resized(width: w, height: h, filter: resample)
        let top = (h - cropSize) / 2, left = (w - cropSize) / 2
        return resized.cropped(x: left, y: top, width: cropSize, height: cropSize).pixelValues(mean: mean, std: std)
    }
}

extension PixelImage {
    /// Pillow's alpha_composite onto opaque white, then RGB (how CLIPImageProcessor treats transparency).
    public func compositedOnWhite() -> PixelImage {
        precondition(channels == 4)
        var out = PixelImage(width: width, height: height, channels: 3)
        for i in 0..<(width * height) {
            let a = UInt32(pixels[i * 4 + 3])
            for c in 0..<3 {
                // Pillow: blend = src * a + dst * (255 - a), rounded with (x + 0x80 + ((x + 0x80) >> 8)) >> 8.
                let x = UInt32(pixels[i * 4 + c]) * a + 255 * (255 - a)
                out.pixels[i * 3 + c] = UInt8((x + 0x80 + ((x + 0x80) >> 8)) >> 8)
            }
        }
        return out
    }
}
