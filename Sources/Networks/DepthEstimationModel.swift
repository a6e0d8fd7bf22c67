// The depth estimators the engine runs, behind one interface, and the rule that picks one for a folder: its
// config.json's model_type, as transformers' AutoModelForDepthEstimation does.
import Checkpoint
import Foundation
import TensorCore

public protocol DepthEstimationModel: AnyObject {
    /// pixelValues [B, 3, H, W] (normalised by the model's image processor) -> predicted_depth [B, H', W'].
    func callAsFunction(_ pixelValues: Tensor) -> Tensor
    var patchSize: Int { get }
    /// Whether the model takes only pictures whose patch grid is square.
    var needsSquareInput: Bool { get }
}

/// Loads the depth estimator in `folder` (config.json + model.safetensors).
public func loadDepthEstimationModel(folder: String, variant: String? = nil,
                                     precision: Precision = .fp32) throws -> DepthEstimationModel {
    let path = (folder as NSString).appendingPathComponent("config.json")
    guard FileManager.default.fileExists(atPath: path) else {
        throw CheckpointError.badConfig(
            path: folder, reason: "not a transformers depth model (no config.json; a diffusers pipeline folder?)")
    }
    let modelType = try ConfigReader(path: path).string("model_type", default: nil)
    switch modelType {
    case "dpt": return try DPTForDepthEstimation(folder: folder, variant: variant, precision: precision)
    case "depth_anything":
        return try DepthAnythingForDepthEstimation(folder: folder, variant: variant, precision: precision)
    default:
        throw CheckpointError.unsupportedConfig(path: path, key: "model_type", value: modelType ?? "(missing)")
    }
}
