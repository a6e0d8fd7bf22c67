// The DPT neck and its pieces, shared by DPTForDepthEstimation and DepthAnythingForDepthEstimation (transformers
// models/dpt/modeling_dpt.py and models/depth_anything/modeling_depth_anything.py): backbone tokens are
// reassembled into feature maps at four scales, projected to one width and fused from the coarsest up. The two
// families differ in three places, each a setting here: how the [CLS] token is read out, whether the residual
// convolutions have a bias, and whether each fusion step upsamples by 2 or to the next map's size.
import Checkpoint
import TensorCore

/// How the reassemble stage uses the [CLS] token (DPTConfig.readout_type).
public enum DPTReadout: String, Sendable {
    /// Concatenated to every patch token, then Linear(2D, D) and the backbone's activation.
    case project
    /// Added to every patch token.
    case add
    /// Dropped (DPT's "ignore"; Depth Anything always drops it).
    case ignore
}

/// DPTReassembleLayer: 1x1 projection to the stage's width, then resampling by the stage's factor.
struct DPTReassembleLayer {
    enum Resize {
        case identity
        /// ConvTranspose2d(kernel = stride = factor).
        case upsample(weight: Weight, bias: Tensor, factor: Int)
        /// Conv2d(3x3, stride = 1 / factor, padding 1).
        case downsample(Conv2d)
    }

    let projection: Conv2d
    let resize: Resize

    init(_ w: WeightScope, hiddenSize: Int, channels: Int, factor: Double) throws {
        projection = try Conv2d(w.scope("projection"), in: hiddenSize, out: channels, kernel: 1)
        if factor > 1 {
            let k = Int(factor)
            resize = .upsample(weight: try w.weight("resize.weight", [channels, channels, k, k]),
                               bias: try w.tensor("resize.bias", [channels]), factor: k)
        } else if factor == 1 {
            resize = .identity
        } else {
            resize = .downsample(try Conv2d(w.scope("resize"), in: channels, out: channels, kernel: 3,
                                            stride: Int(1 / factor), padding: .symmetric(1)))
        }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let projected = projection(x)
        switch resize {
        case .identity: return projected.planar()
        case .upsample(let weight, let bias, let factor):
            return convTranspose2d(projected, weight: weight, bias: bias, stride: factor)
        case .downsample(let conv): return conv(projected).planar()
        }
    }
}

/// DPTPreActResidualLayer: x + conv2(relu(conv1(relu(x)))).
struct DPTPreActResidualLayer {
    let convolution1: Conv2d, convolution2: Conv2d

    init(_ w: WeightScope, channels: Int, bias: Bool) throws {
        convolution1 = try Conv2d(w.scope("convolution1"), in: channels, out: channels, kernel: 3, bias: bias)
        convolution2 = try Conv2d(w.scope("convolution2"), in: channels, out: channels, kernel: 3, bias: bias)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let first = convolution1(activated(.relu, x))
        applyActivation(.relu, first)
        let out = convolution2(first).planar()
        addInPlace(out, x)
        return out
    }
}

/// DPTFeatureFusionLayer: adds the refined skip map, refines again, upsamples (bilinear, align_corners=True),
/// projects 1x1.
struct DPTFeatureFusionLayer {
    let projection: Conv2d
    let residualLayer1: DPTPreActResidualLayer, residualLayer2: DPTPreActResidualLayer

    init(_ w: WeightScope, channels: Int, residualBias: Bool) throws {
        projection = try Conv2d(w.scope("projection"), in: channels, out: channels, kernel: 1)
        residualLayer1 = try DPTPreActResidualLayer(w.scope("residual_layer1"), channels: channels, bias: residualBias)
        residualLayer2 = try DPTPreActResidualLayer(w.scope("residual_layer2"), channels: channels, bias: residualBias)
    }

    /// `size`: the output's (height, width) before projection; nil doubles the input's.
    func callAsFunction(_ x: Tensor, residual: Tensor?, size: (height: Int, width: Int)?) -> Tensor {
        var hidden = x
        if var skip = residual {
            if skip.shape != x.shape {
                skip = interpolateBilinear(skip, height: x.dim(2), width: x.dim(3), alignCorners: false)
            }
            hidden = x.copy()
            addInPlace(hidden, residualLayer1(skip))
        }
        hidden = residualLayer2(hidden)
        let target = size ?? (hidden.dim(2) * 2, hidden.dim(3) * 2)
        hidden = interpolateBilinear(hidden, height: target.height, width: target.width, alignCorners: true)
        return projection(hidden).planar()
    }
}

/// The settings that tell DPT's neck from Depth Anything's.
struct DPTNeckConfig {
    var hiddenSize: Int
    var neckHiddenSizes: [Int]
    var reassembleFactors: [Double]
    var fusionHiddenSize: Int
    var readout: DPTReadout
    var readoutActivation: Activation
    var residualBias: Bool
    /// Depth Anything upsamples each fusion step to the next finer map's size; DPT doubles.
    var upsampleToNextMap: Bool
}

/// DPTNeck: reassemble_stage, convs, fusion_stage. Returns every fused map, coarsest first, as transformers does.
struct DPTNeck {
    let config: DPTNeckConfig
    let readoutProjects: [Linear]
    let reassembleLayers: [DPTReassembleLayer]
    let convs: [Conv2d]
    let fusionLayers: [DPTFeatureFusionLayer]

    init(_ w: WeightScope, _ config: DPTNeckConfig) throws {
        self.config = config
        let stages = config.neckHiddenSizes.count
        let reassemble = w.scope("reassemble_stage")
        readoutProjects = config.readout == .project
            ? try (0..<stages).map {
                try Linear(reassemble.scope("readout_projects.\($0).0"), in: 2 * config.hiddenSize,
                           out: config.hiddenSize)
            }
            : []
        reassembleLayers = try (0..<stages).map {
            try DPTReassembleLayer(reassemble.scope("layers", $0), hiddenSize: config.hiddenSize,
                                   channels: config.neckHiddenSizes[$0], factor: config.reassembleFactors[$0])
        }
        convs = try (0..<stages).map {
            try Conv2d(w.scope("convs", $0), in: config.neckHiddenSizes[$0], out: config.fusionHiddenSize,
                       kernel: 3, bias: false)
        }
        fusionLayers = try (0..<stages).map {
            try DPTFeatureFusionLayer(w.scope("fusion_stage.layers", $0), channels: config.fusionHiddenSize,
                                      residualBias: config.residualBias)
        }
    }

    /// hiddenStates: one [B, 1 + h*w, D] token sequence per stage ([CLS] first).
    func callAsFunction(_ hiddenStates: [Tensor], patchHeight: Int, patchWidth: Int) -> [Tensor] {
        let features = hiddenStates.enumerated().map { index, tokens in
            convs[index](reassembleLayers[index](featureMap(tokens, stage: index, height: patchHeight,
                                                            width: patchWidth))).planar()
        }
        var fused: [Tensor] = []
        let coarseFirst = Array(features.reversed())
        for (index, feature) in coarseFirst.enumerated() {
            let isLast = index == coarseFirst.count - 1
            let size = config.upsampleToNextMap && !isLast
                ? (coarseFirst[index + 1].dim(2), coarseFirst[index + 1].dim(3)) : nil
            let next = fused.last.map { fusionLayers[index]($0, residual: feature, size: size) }
                ?? fusionLayers[index](feature, residual: nil, size: size)
            fused.append(next)
        }
        return fused
    }

    /// Patch tokens as a [B, D, h, w] map, after the [CLS] readout.
    private func featureMap(_ tokens: Tensor, stage: Int, height: Int, width: Int) -> Tensor {
        let (batch, dim) = (tokens.dim(0), tokens.dim(2))
        let patches = height * width
        shapeCheck(tokens.dim(1) == patches + 1, "DPT neck: \(tokens.shape) for a \(height)x\(width) patch grid")
        var patchTokens = slice(tokens, axis: 1, start: 1, length: patches)
        switch config.readout {
        case .ignore: break
        case .add:
            for b in 0..<batch {
                let cls = tokens.data + b * (patches + 1) * dim
                for p in 0..<patches {
                    let row = patchTokens.data + (b * patches + p) * dim
                    for d in 0..<dim { row[d] += cls[d] }
                }
            }
        case .project:
            let joined = Tensor(shape: [batch, patches, 2 * dim])
            for b in 0..<batch {
                let cls = tokens.data + b * (patches + 1) * dim
                for p in 0..<patches {
                    let row = joined.data + (b * patches + p) * 2 * dim
                    row.update(from: patchTokens.data + (b * patches + p) * dim, count: dim)
                    (row + dim).update(from: cls, count: dim)
                }
            }
            patchTokens = readoutProjects[stage](joined)
            applyActivation(config.readoutActivation, patchTokens)
        }
        return transposeLastTwo(patchTokens).reshaped([batch, dim, height, width])
    }
}
