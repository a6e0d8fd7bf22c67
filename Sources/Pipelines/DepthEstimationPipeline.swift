// transformers' `depth-estimation` pipeline (pipelines/depth_estimation.py) for DPT and Depth Anything: the image
// processor, the model, then post_process_depth_estimation (bicubic, align_corners=False, to the input's size) and
// the pipeline's own 8-bit picture: (d - min) / (max - min) * 255, truncated, all in float32 as numpy computes it.
import Checkpoint
import Foundation
import ImageProcessing
import Networks
import TensorCore

public struct DepthEstimation {
    /// post_process_depth_estimation's output: predicted depth at the input's size [H, W] (larger = nearer for
    /// these relative-depth models).
    public let depth: Tensor
    /// The pipeline's "depth" picture: one channel, 0 at the farthest point and 255 at the nearest.
    public let picture: PixelImage
}

public enum DepthEstimationError: Error, CustomStringConvertible {
    case notSquare(height: Int, width: Int)

    public var description: String {
        switch self {
        case .notSquare(let height, let width):
            return "this DPT model takes square inputs only, and its image processor made \(width)x\(height)"
                + " (set keep_aspect_ratio false in its preprocessor_config.json)"
        }
    }
}

public final class DepthEstimationPipeline {
    public let model: DepthEstimationModel
    public let processor: DPTImageProcessor

    public init(model: DepthEstimationModel, processor: DPTImageProcessor) {
        self.model = model
        self.processor = processor
    }

    /// A depth model folder: config.json, model.safetensors and preprocessor_config.json.
    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let model = try loadDepthEstimationModel(folder: folder, variant: variant, precision: precision)
        let processor = try DPTImageProcessor(
            configPath: (folder as NSString).appendingPathComponent("preprocessor_config.json"))
        self.init(model: model, processor: processor)
    }

    /// Estimates depth for `image`, at its own size.
    public func callAsFunction(_ image: PixelImage) throws -> DepthEstimation {
        let pixelValues = processor(image)
        let (height, width) = (pixelValues.dim(2), pixelValues.dim(3))
        if model.needsSquareInput && height / model.patchSize != width / model.patchSize {
            throw DepthEstimationError.notSquare(height: height, width: width)
        }
        let predicted = model(pixelValues)
        guard predicted.allFinite else { throw NumericsError(stage: "depth estimation", step: 1, steps: 1) }
        return Self.postProcess(predicted, height: image.height, width: image.width)
    }

    /// predicted_depth [1, h, w] -> the depth at height x width and its 8-bit picture. A flat depth map (max ==
    /// min, where numpy divides by zero) gives an all-black picture.
    public static func postProcess(_ predicted: Tensor, height: Int, width: Int) -> DepthEstimation {
        let map = predicted.reshaped([1, 1, predicted.dim(-2), predicted.dim(-1)])
        let resized = interpolateBicubic(map, height: height, width: width)
        let depth = resized.reshaped([height, width])
        var low = Float.infinity, high = -Float.infinity
        for i in 0..<depth.count {
            low = min(low, depth.data[i])
            high = max(high, depth.data[i])
        }
        var picture = PixelImage(width: width, height: height, channels: 1)
        let range = high - low
        if range > 0 {
            for i in 0..<depth.count {
                let scaled = (depth.data[i] - low) / range * 255
                picture.pixels[i] = UInt8(min(max(scaled, 0), 255).rounded(.towardZero))
            }
        }
        return DepthEstimation(depth: depth, picture: picture)
    }
}
