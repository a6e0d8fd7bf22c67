// transformers' DPTImageProcessor on its PIL path (models/dpt/image_processing_pil_dpt.py), which DPT and Depth
// Anything both use: resize to `size` (optionally keeping the aspect ratio by scaling as little as possible, and
// rounding each side to a multiple of `ensure_multiple_of`), rescale, normalise, and optionally pad each side to a
// multiple of `size_divisor`, centred.
import Checkpoint
import Foundation
import TensorCore

public struct DPTImageProcessor: Sendable {
    public var height = 384, width = 384
    public var keepAspectRatio = false
    public var ensureMultipleOf = 1
    public var resample = ResampleFilter.bicubic
    public var doResize = true
    public var rescaleFactor = 1.0 / 255.0
    public var mean: [Float] = [0.5, 0.5, 0.5]
    public var std: [Float] = [0.5, 0.5, 0.5]
    /// Pad to a multiple of this (do_pad with size_divisor); nil = no padding.
    public var sizeDivisor: Int?

    public init() {}

    /// Reads preprocessor_config.json; an absent key takes DPTImageProcessor's own default.
    public init(configPath: String) throws {
        let c = try ConfigReader(path: configPath)
        switch c.values["size"] {
        case let side as NSNumber:
            height = side.intValue
            width = side.intValue
        case let sides as [String: Any]:
            guard let h = sides["height"] as? NSNumber, let w = sides["width"] as? NSNumber else {
                throw CheckpointError.unsupportedConfig(path: configPath, key: "size", value: "\(sides)")
            }
            height = h.intValue
            width = w.intValue
        case nil, is NSNull: break
        case let other?: throw CheckpointError.unsupportedConfig(path: configPath, key: "size", value: "\(other)")
        }
        c.ignore(["size"])
        guard (1...16384).contains(height), (1...16384).contains(width) else {
            throw CheckpointError.badConfig(path: configPath, reason: "size \(height)x\(width) is out of range")
        }
        keepAspectRatio = try c.bool("keep_aspect_ratio", default: false)
        ensureMultipleOf = try c.int("ensure_multiple_of", default: 1, in: 1...1024)
        let filter = try c.int("resample", default: ResampleFilter.bicubic.rawValue)
        guard let resample = ResampleFilter(rawValue: filter) else {
            throw CheckpointError.unsupportedConfig(path: configPath, key: "resample", value: "\(filter)")
        }
        self.resample = resample
        doResize = try c.bool("do_resize", default: true)
        let doRescale = try c.bool("do_rescale", default: true)
        rescaleFactor = doRescale ? try c.double("rescale_factor", default: 1.0 / 255.0, in: 1e-12...1) : 1
        if !doRescale { c.ignore(["rescale_factor"]) }
        if try c.bool("do_normalize", default: true) {
            mean = try c.doubles("image_mean", default: [0.5, 0.5, 0.5]).map { Float($0) }
            std = try c.doubles("image_std", default: [0.5, 0.5, 0.5]).map { Float($0) }
            guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 }) else {
                throw CheckpointError.badConfig(path: configPath, reason: "image_mean and image_std need 3 values")
            }
        } else {
            mean = [0, 0, 0]
            std = [1, 1, 1]
            c.ignore(["image_mean", "image_std"])
        }
        let doPad = try c.bool("do_pad", default: false)
        let divisor = c.values["size_divisor"] is NSNumber ? try c.int("size_divisor", in: 1...1024) : nil
        c.ignore(["size_divisor"])
        sizeDivisor = doPad ? divisor : nil
        // RGB conversion happens before us (load_image converts to RGB); the rest is labelling metadata.
        c.ignore(["do_convert_rgb", "do_reduce_labels", "image_processor_type", "feature_extractor_type",
                  "processor_class", "default_to_square", "crop_size", "do_center_crop"])
        try c.finish()
    }

    /// get_resize_output_image_size: (height, width) for an input of `inputHeight` x `inputWidth`.
    public func outputSize(inputHeight: Int, inputWidth: Int) -> (height: Int, width: Int) {
        var scaleHeight = Double(height) / Double(inputHeight)
        var scaleWidth = Double(width) / Double(inputWidth)
        if keepAspectRatio {
            // Scale as little as possible: fit whichever side needs the smaller change.
            if abs(1 - scaleWidth) < abs(1 - scaleHeight) {
                scaleHeight = scaleWidth
            } else {
                scaleWidth = scaleHeight
            }
        }
        return (constrained(scaleHeight * Double(inputHeight)), constrained(scaleWidth * Double(inputWidth)))
    }

    /// constrain_to_multiple_of with Python's round (half to even) and min_val 0.
    private func constrained(_ value: Double) -> Int {
        let multiple = Double(ensureMultipleOf)
        let rounded = (value / multiple).rounded(.toNearestOrEven) * multiple
        return Int(rounded < 0 ? (value / multiple).rounded(.up) * multiple : rounded)
    }

    /// An image (RGB; grey and RGBA are converted as Pillow's convert("RGB")) -> pixel_values [1, 3, H, W].
    public func callAsFunction(_ image: PixelImage) -> Tensor {
        var rgb = image.rgb()
        if doResize {
            let size = outputSize(inputHeight: rgb.height, inputWidth: rgb.width)
            rgb = rgb.resized(width: max(size.width, 1), height: max(size.height, 1), filter: resample)
        }
        let values = rgb.pixelValues(rescaleFactor: rescaleFactor, mean: mean, std: std)
        guard let divisor = sizeDivisor else { return values }
        return Self.padded(values, toMultipleOf: divisor)
    }

    /// pad_image: zeros around the normalised values, the odd one after.
    static func padded(_ values: Tensor, toMultipleOf divisor: Int) -> Tensor {
        let (height, width) = (values.dim(2), values.dim(3))
        let paddedHeight = (height + divisor - 1) / divisor * divisor
        let paddedWidth = (width + divisor - 1) / divisor * divisor
        let top = (paddedHeight - height) / 2, left = (paddedWidth - width) / 2
        let out = Tensor(shape: [1, 3, paddedHeight, paddedWidth], filledWith: 0)
        for c in 0..<3 {
            for y in 0..<height {
                let source = values.data + (c * height + y) * width
                (out.data + (c * paddedHeight + top + y) * paddedWidth + left).update(from: source, count: width)
            }
        }
        return out
    }
}
