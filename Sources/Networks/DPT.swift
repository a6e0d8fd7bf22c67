// transformers models/dpt/modeling_dpt.py: DPTForDepthEstimation with its own ViT backbone (as Intel/dpt-large;
// the hybrid ResNet backbone is not implemented and is refused by the config).
import Checkpoint
import Foundation
import TensorCore

public struct DPTConfig {
    public var encoder = ViTEncoderConfig(hiddenSize: 768, layers: 12, heads: 12, layerNormEps: 1e-12, imageSize: 384,
                                          patchSize: 16)
    public var intermediateSize = 3072
    public var backboneOutIndices = [2, 5, 8, 11]
    public var readout = DPTReadout.project
    public var reassembleFactors: [Double] = [4, 2, 1, 0.5]
    public var neckHiddenSizes = [96, 192, 384, 768]
    public var fusionHiddenSize = 256
    public var headInIndex = -1
    public var residualBias = true

    public init() {}

    public init(_ c: ConfigReader) throws {
        encoder = try ViTEncoderConfig(c, defaults: encoder)
        intermediateSize = try c.int("intermediate_size", default: intermediateSize, in: ConfigRange.size)
        backboneOutIndices = try c.ints("backbone_out_indices", default: backboneOutIndices, in: 0...(encoder.layers - 1))
        readout = try c.choice("readout_type", default: "project")
        reassembleFactors = try DPTConfig.factors(c)
        neckHiddenSizes = try c.ints("neck_hidden_sizes", default: neckHiddenSizes, in: ConfigRange.size)
        fusionHiddenSize = try c.int("fusion_hidden_size", default: fusionHiddenSize, in: ConfigRange.size)
        headInIndex = try c.int("head_in_index", default: -1)
        guard neckHiddenSizes.count == backboneOutIndices.count, neckHiddenSizes.count == reassembleFactors.count,
            (-neckHiddenSizes.count..<neckHiddenSizes.count).contains(headInIndex)
        else {
            throw CheckpointError.badConfig(
                path: c.path, reason: "backbone_out_indices, neck_hidden_sizes and reassemble_factors need one entry"
                    + " per stage, and head_in_index must name one")
        }
        let batchNorm = try c.bool("use_batch_norm_in_fusion_residual", default: false)
        // Implemented: the fusion residual without batch norm (every released ViT DPT); with it, refused.
        try c.require("use_batch_norm_in_fusion_residual", in: [false])
        let bias = c.values["use_bias_in_fusion_residual"] as? Bool
        c.ignore(["use_bias_in_fusion_residual"])
        residualBias = bias ?? !batchNorm
        try c.require("is_hybrid", in: [false])
        try c.require("add_projection", in: [false])
        try c.require("backbone_config", in: [])
        try c.require("backbone", in: [])
        for key in ["neck_ignore_stages", "backbone_featmap_shape"] {
            if let stages = c.values[key] as? [Any], !stages.isEmpty {
                throw CheckpointError.unsupportedConfig(path: c.path, key: key, value: "\(stages)")
            }
            c.ignore([key])
        }
        TransformersConfig.ignoreBookkeeping(c)
        // The segmentation heads and the pooler are not part of DPTForDepthEstimation.
        c.ignore(["use_auxiliary_head", "auxiliary_loss_weight", "semantic_loss_ignore_index",
                  "semantic_classifier_dropout", "pooler_output_size", "pooler_act", "use_pretrained_backbone",
                  "use_timm_backbone", "backbone_kwargs"])
        try c.finish()
    }

    /// reassemble_factors: integers above 1 (transposed-convolution kernels), 1, or 1/n below it.
    static func factors(_ c: ConfigReader) throws -> [Double] {
        let values = try c.doubles("reassemble_factors", default: [4, 2, 1, 0.5])
        for value in values {
            let valid = value >= 1 ? value == value.rounded() && value <= 64 : value > 0 && (1 / value) >= 1
            guard valid else {
                throw CheckpointError.unsupportedConfig(path: c.path, key: "reassemble_factors", value: "\(values)")
            }
        }
        return values
    }
}

/// DPTViTLayer: pre-LN attention and MLP (intermediate.dense, output.dense), both residual.
struct DPTViTLayer {
    let layernormBefore: LayerNorm, layernormAfter: LayerNorm
    let attention: ViTAttention
    let intermediate: Linear, output: Linear
    let act: Activation

    init(_ w: WeightScope, _ config: DPTConfig) throws {
        let c = config.encoder
        layernormBefore = try LayerNorm(w.scope("layernorm_before"), dim: c.hiddenSize, eps: c.layerNormEps)
        layernormAfter = try LayerNorm(w.scope("layernorm_after"), dim: c.hiddenSize, eps: c.layerNormEps)
        attention = try ViTAttention(w.scope("attention"), c)
        intermediate = try Linear(w.scope("intermediate.dense"), in: c.hiddenSize, out: config.intermediateSize)
        output = try Linear(w.scope("output.dense"), in: config.intermediateSize, out: c.hiddenSize)
        act = c.act
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = attention(layernormBefore(x))
        addInPlace(h, x)
        let f = intermediate(layernormAfter(h))
        applyActivation(act, f)
        let o = output(f)
        addInPlace(o, h)
        return o
    }
}

/// DPTDepthEstimationHead: conv 3x3 to F/2, bilinear x2 (align_corners=True), conv 3x3 to 32, ReLU, conv 1x1 to
/// one channel, ReLU.
struct DPTDepthEstimationHead {
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d

    init(_ w: WeightScope, features: Int) throws {
        conv1 = try Conv2d(w.scope("head.0"), in: features, out: features / 2, kernel: 3)
        conv2 = try Conv2d(w.scope("head.2"), in: features / 2, out: 32, kernel: 3)
        conv3 = try Conv2d(w.scope("head.4"), in: 32, out: 1, kernel: 1)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let first = conv1(x).planar()
        let up = interpolateBilinear(first, height: first.dim(2) * 2, width: first.dim(3) * 2, alignCorners: true)
        let second = conv2(up)
        applyActivation(.relu, second)
        let depth = conv3(second).planar()
        applyActivation(.relu, depth)
        return depth.reshaped([depth.dim(0), depth.dim(2), depth.dim(3)])
    }
}

public final class DPTForDepthEstimation: DepthEstimationModel {
    public let config: DPTConfig
    let embeddings: ViTEmbeddings
    let layers: [DPTViTLayer]
    let neck: DPTNeck
    let head: DPTDepthEstimationHead

    public init(config: DPTConfig, weights store: WeightStore) throws {
        self.config = config
        let dpt = store.scope("dpt")
        let encoder = config.encoder
        embeddings = try ViTEmbeddings(dpt.scope("embeddings"), encoder)
        layers = try (0..<encoder.layers).map { try DPTViTLayer(dpt.scope("encoder.layer", $0), config) }
        // DPTModel's final LayerNorm feeds only the pooler, which the depth model does not have.
        _ = try LayerNorm(dpt.scope("layernorm"), dim: encoder.hiddenSize, eps: encoder.layerNormEps)
        let neckConfig = DPTNeckConfig(
            hiddenSize: encoder.hiddenSize, neckHiddenSizes: config.neckHiddenSizes,
            reassembleFactors: config.reassembleFactors, fusionHiddenSize: config.fusionHiddenSize,
            readout: config.readout, readoutActivation: encoder.act, residualBias: config.residualBias,
            upsampleToNextMap: false)
        neck = try DPTNeck(store.scope("neck"), neckConfig)
        head = try DPTDepthEstimationHead(store.scope("head"), features: config.fusionHiddenSize)
        try store.finish()
    }

    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let config = try DPTConfig(ConfigReader(path: (folder as NSString).appendingPathComponent("config.json")))
        try self.init(config: config, weights: WeightStore(folder: folder, variant: variant, precision: precision))
    }

    public var patchSize: Int { config.encoder.patchSize }
    /// transformers reshapes the tokens to a square grid, so DPT's own backbone takes square inputs only.
    public var needsSquareInput: Bool { true }

    public func callAsFunction(_ pixelValues: Tensor) -> Tensor {
        let grid = (height: pixelValues.dim(2) / patchSize, width: pixelValues.dim(3) / patchSize)
        shapeCheck(grid.height == grid.width, "DPT needs a square patch grid, not \(pixelValues.shape)")
        // DPTViTEmbeddings._resize_pos_embed: bilinear, align_corners=False (an identity at the trained size).
        let positions = grid.height == embeddings.trainedGrid
            ? embeddings.positionEmbeddings
            : embeddings.positions(height: grid.height, width: grid.width) {
                interpolateBilinear($0, height: $1, width: $2, alignCorners: false)
            }
        var hidden = embeddings(pixelValues, positions: positions)
        var selected: [Tensor] = []
        for (index, layer) in layers.enumerated() {
            hidden = layer(hidden)
            if config.backboneOutIndices.contains(index) { selected.append(hidden) }
        }
        let fused = neck(selected, patchHeight: grid.height, patchWidth: grid.width)
        return head(fused[(config.headInIndex + fused.count) % fused.count])
    }
}
