// transformers models/depth_anything/modeling_depth_anything.py: DepthAnythingForDepthEstimation (as
// depth-anything/Depth-Anything-V2-Small-hf), a DINOv2 backbone (Dinov2.swift) under the DPT neck (DPTNeck.swift).
import Checkpoint
import Foundation
import TensorCore

public struct DepthAnythingConfig {
    public var backbone = Dinov2Config()
    public var patchSize = 14
    public var reassembleHiddenSize = 384
    public var reassembleFactors: [Double] = [4, 2, 1, 0.5]
    public var neckHiddenSizes = [48, 96, 192, 384]
    public var fusionHiddenSize = 64
    public var headInIndex = -1
    public var headHiddenSize = 32
    /// "relative": ReLU output; "metric": sigmoid times max_depth.
    public var metric = false
    public var maxDepth: Float = 1

    public init() {}

    public init(_ c: ConfigReader) throws {
        guard let backboneValues = c.values["backbone_config"] as? [String: Any] else {
            throw CheckpointError.badConfig(path: c.path, reason: "backbone_config (a Dinov2Config) is missing")
        }
        c.ignore(["backbone_config"])
        let backboneReader = ConfigReader(path: c.path + " backbone_config", values: backboneValues)
        try backboneReader.require("model_type", in: ["dinov2"])
        backbone = try Dinov2Config(backboneReader)
        patchSize = try c.int("patch_size", default: patchSize, in: ConfigRange.kernel)
        reassembleHiddenSize = try c.int("reassemble_hidden_size", default: backbone.encoder.hiddenSize, in: ConfigRange.size)
        reassembleFactors = try DPTConfig.factors(c)
        neckHiddenSizes = try c.ints("neck_hidden_sizes", default: neckHiddenSizes, in: ConfigRange.size)
        fusionHiddenSize = try c.int("fusion_hidden_size", default: fusionHiddenSize, in: ConfigRange.size)
        headInIndex = try c.int("head_in_index", default: -1)
        headHiddenSize = try c.int("head_hidden_size", default: headHiddenSize, in: ConfigRange.size)
        let kind = try c.string("depth_estimation_type", default: "relative")!
        guard kind == "relative" || kind == "metric" else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "depth_estimation_type", value: kind)
        }
        metric = kind == "metric"
        maxDepth = Float(try c.double("max_depth", default: 1, in: 1e-6...1e6))
        let stages = neckHiddenSizes.count
        guard backbone.outIndices.count == stages, reassembleFactors.count == stages,
            reassembleHiddenSize == backbone.encoder.hiddenSize, (-stages..<stages).contains(headInIndex)
        else {
            throw CheckpointError.badConfig(
                path: c.path, reason: "the backbone's out_features, neck_hidden_sizes and reassemble_factors need one"
                    + " entry per stage, reassemble_hidden_size must be the backbone's hidden_size, and"
                    + " head_in_index must name a stage")
        }
        try c.require("backbone", in: [])
        TransformersConfig.ignoreBookkeeping(c)
        c.ignore(["use_pretrained_backbone", "use_timm_backbone", "backbone_kwargs"])
        try c.finish()
    }
}

/// DepthAnythingDepthEstimationHead: conv 3x3 to F/2, bilinear to the patch grid times patch size
/// (align_corners=True), conv 3x3, ReLU, conv 1x1 to one channel, ReLU (relative) or sigmoid * max_depth (metric).
struct DepthAnythingDepthEstimationHead {
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    let metric: Bool, maxDepth: Float

    init(_ w: WeightScope, _ c: DepthAnythingConfig) throws {
        conv1 = try Conv2d(w.scope("conv1"), in: c.fusionHiddenSize, out: c.fusionHiddenSize / 2, kernel: 3)
        conv2 = try Conv2d(w.scope("conv2"), in: c.fusionHiddenSize / 2, out: c.headHiddenSize, kernel: 3)
        conv3 = try Conv2d(w.scope("conv3"), in: c.headHiddenSize, out: 1, kernel: 1)
        metric = c.metric
        maxDepth = c.maxDepth
    }

    func callAsFunction(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let up = interpolateBilinear(conv1(x).planar(), height: height, width: width, alignCorners: true)
        let second = conv2(up)
        applyActivation(.relu, second)
        let depth = conv3(second).planar()
        if metric {
            for i in 0..<depth.count { depth.data[i] = (1 / (1 + expf(-depth.data[i]))) * maxDepth }
        } else {
            applyActivation(.relu, depth)
            if maxDepth != 1 { for i in 0..<depth.count { depth.data[i] *= maxDepth } }
        }
        return depth.reshaped([depth.dim(0), depth.dim(2), depth.dim(3)])
    }
}

public final class DepthAnythingForDepthEstimation: DepthEstimationModel {
    public let config: DepthAnythingConfig
    let backbone: Dinov2Backbone
    let neck: DPTNeck
    let head: DepthAnythingDepthEstimationHead

    public init(config: DepthAnythingConfig, weights store: WeightStore) throws {
        self.config = config
        backbone = try Dinov2Backbone(store.scope("backbone"), config.backbone)
        let neckConfig = DPTNeckConfig(
            hiddenSize: config.reassembleHiddenSize, neckHiddenSizes: config.neckHiddenSizes,
            reassembleFactors: config.reassembleFactors, fusionHiddenSize: config.fusionHiddenSize,
            readout: .ignore, readoutActivation: config.backbone.encoder.act, residualBias: true, upsampleToNextMap: true)
        neck = try DPTNeck(store.scope("neck"), neckConfig)
        head = try DepthAnythingDepthEstimationHead(store.scope("head"), config)
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let path = (folder as NSString).appendingPathComponent("config.json")
        let config = try DepthAnythingConfig(ConfigReader(path: path))
        try self.init(config: config, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    public var patchSize: Int { config.backbone.encoder.patchSize }
    public var needsSquareInput: Bool { false }

    public func callAsFunction(_ pixelValues: Tensor) -> Tensor {
        // The neck and head use the model's patch_size, the grid the backbone's; released models make them equal.
        let patchHeight = pixelValues.dim(2) / config.patchSize, patchWidth = pixelValues.dim(3) / config.patchSize
        let fused = neck(backbone(pixelValues), patchHeight: patchHeight, patchWidth: patchWidth)
        let last = fused[(config.headInIndex + fused.count) % fused.count]
        return head(last, height: patchHeight * config.patchSize, width: patchWidth * config.patchSize)
    }
}
