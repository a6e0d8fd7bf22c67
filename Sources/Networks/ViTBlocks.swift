// Pieces of transformers' ViT family (models/vit/modeling_vit.py) that DPT's and DINOv2's encoders share under
// the same key names: the patch embedding and the self-attention with its output projection.
import Checkpoint
import TensorCore

/// The encoder settings every ViT-family config states under the same keys (transformers ViTConfig's names), read
/// once for DPT's and DINOv2's configs; `defaults` are the family's own when a key is absent.
public struct ViTEncoderConfig {
    public var hiddenSize: Int, layers: Int, heads: Int
    public var act = Activation.gelu
    public var layerNormEps: Float
    public var imageSize: Int, patchSize: Int, channels = 3
    public var qkvBias = true

    init(hiddenSize: Int, layers: Int, heads: Int, layerNormEps: Float, imageSize: Int, patchSize: Int) {
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.layerNormEps = layerNormEps
        self.imageSize = imageSize
        self.patchSize = patchSize
    }

    init(_ c: ConfigReader, defaults d: ViTEncoderConfig) throws {
        hiddenSize = try c.int("hidden_size", default: d.hiddenSize, in: ConfigRange.size)
        layers = try c.int("num_hidden_layers", default: d.layers, in: ConfigRange.count)
        heads = try c.int("num_attention_heads", default: d.heads, in: ConfigRange.count)
        let actName = try c.string("hidden_act", default: "gelu")!
        guard let act = Activation(configName: actName) else {
            throw CheckpointError.unsupportedConfig(path: c.path, key: "hidden_act", value: actName)
        }
        self.act = act
        layerNormEps = Float(try c.double("layer_norm_eps", default: Double(d.layerNormEps), in: ConfigRange.epsilon))
        imageSize = try c.int("image_size", default: d.imageSize, in: ConfigRange.size)
        patchSize = try c.int("patch_size", default: d.patchSize, in: 1...imageSize)
        channels = try c.int("num_channels", default: d.channels, in: ConfigRange.count)
        qkvBias = try c.bool("qkv_bias", default: d.qkvBias)
    }
}

/// ViTAttention: `attention.query/key/value` and `output.dense`, no mask, scale 1/sqrt(head_dim).
struct ViTAttention {
    let query: Linear, key: Linear, value: Linear, output: Linear
    let heads: Int

    init(_ w: WeightScope, _ c: ViTEncoderConfig) throws {
        let d = c.hiddenSize
        query = try Linear(w.scope("attention.query"), in: d, out: d, bias: c.qkvBias)
        key = try Linear(w.scope("attention.key"), in: d, out: d, bias: c.qkvBias)
        value = try Linear(w.scope("attention.value"), in: d, out: d, bias: c.qkvBias)
        output = try Linear(w.scope("output.dense"), in: d, out: d)
        heads = c.heads
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let headDim = x.dim(-1) / heads
        return output(attention(q: query(x), k: key(x), v: value(x), heads: heads,
                                scale: 1 / Float(headDim).squareRoot(), precision: query.weight.precision))
    }
}

/// ViT embeddings: [CLS] + patch projection (Conv2d, kernel = stride = patch) + position embeddings, which the
/// caller resizes to the picture's patch grid its own way.
struct ViTEmbeddings {
    let clsToken: Tensor            // [1, 1, D]
    let projection: Conv2d
    let positionEmbeddings: Tensor  // [1, 1 + g*g, D]
    let patchSize: Int

    /// The side of the square grid the position embeddings were trained on.
    var trainedGrid: Int { Int(Double(positionEmbeddings.dim(1) - 1).squareRoot()) }

    init(_ w: WeightScope, _ c: ViTEncoderConfig) throws {
        let grid = c.imageSize / c.patchSize
        clsToken = try w.tensor("cls_token", [1, 1, c.hiddenSize])
        projection = try Conv2d(w.scope("patch_embeddings.projection"), in: c.channels, out: c.hiddenSize,
                                kernel: c.patchSize, stride: c.patchSize, padding: .symmetric(0))
        positionEmbeddings = try w.tensor("position_embeddings", [1, grid * grid + 1, c.hiddenSize])
        patchSize = c.patchSize
    }

    /// pixelValues [B, C, H, W] -> tokens [B, 1 + h*w, D], with `positions` [1, 1 + h*w, D] added.
    func callAsFunction(_ pixelValues: Tensor, positions: Tensor) -> Tensor {
        classAndPatchTokens(projection(pixelValues), classEmbedding: clsToken, positions: positions)
    }

    /// The position embeddings resampled to an h x w grid by `resample` ([CLS]'s own embedding is kept).
    func positions(height: Int, width: Int, resample: (Tensor, Int, Int) -> Tensor) -> Tensor {
        let dim = positionEmbeddings.dim(2), grid = trainedGrid
        let gridTokens = slice(positionEmbeddings, axis: 1, start: 1, length: grid * grid)
        let map = transposeLastTwo(gridTokens).reshaped([1, dim, grid, grid])
        let resized = resample(map, height, width).planar()
        let out = Tensor(shape: [1, 1 + height * width, dim])
        out.data.update(from: positionEmbeddings.data, count: dim)
        let resizedTokens = transposeLastTwo(resized.reshaped([1, dim, height * width]))
        (out.data + dim).update(from: resizedTokens.data, count: height * width * dim)
        return out
    }
}

/// A patch embedding map [B, D, h, w] as tokens [B, 1 + h*w, D]: the class embedding (D values) first, then the
/// patches in row order, each plus its position embedding ([1 + h*w, D] values). ViT's and CLIP's vision towers.
func classAndPatchTokens(_ patchMap: Tensor, classEmbedding: Tensor, positions: Tensor) -> Tensor {
    let patches = patchMap.planar()
    let (batch, dim) = (patches.dim(0), patches.dim(1))
    let count = patches.dim(2) * patches.dim(3)
    shapeCheck(positions.count == (count + 1) * dim, "position embeddings \(positions.shape) for \(count) patches")
    let tokens = transposeLastTwo(patches.reshaped([batch, dim, count]))
    let out = Tensor(shape: [batch, count + 1, dim])
    for b in 0..<batch {
        let destination = out.data + b * (count + 1) * dim
        destination.update(from: classEmbedding.data, count: dim)
        (destination + dim).update(from: tokens.data + b * count * dim, count: count * dim)
        for i in 0..<((count + 1) * dim) { destination[i] += positions.data[i] }
    }
    return out
}
