// Pieces of transformers' ViT family (models/vit/modeling_vit.py) that DPT's and DINOv2's encoders share under
// the same key names: the patch embedding and the self-attention with its output projection.
import Checkpoint
import TensorCore

/// ViTAttention: `attention.query/key/value` and `output.dense`, no mask, scale 1/sqrt(head_dim).
struct ViTAttention {
    let query: Linear, key: Linear, value: Linear, output: Linear
    let heads: Int

    init(_ w: WeightScope, hiddenSize: Int, heads: Int, qkvBias: Bool) throws {
        query = try Linear(w.scope("attention.query"), in: hiddenSize, out: hiddenSize, bias: qkvBias)
        key = try Linear(w.scope("attention.key"), in: hiddenSize, out: hiddenSize, bias: qkvBias)
        value = try Linear(w.scope("attention.value"), in: hiddenSize, out: hiddenSize, bias: qkvBias)
        output = try Linear(w.scope("output.dense"), in: hiddenSize, out: hiddenSize)
        self.heads = heads
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

    init(_ w: WeightScope, hiddenSize: Int, imageSize: Int, patchSize: Int, channels: Int) throws {
        let grid = imageSize / patchSize
        clsToken = try w.tensor("cls_token", [1, 1, hiddenSize])
        projection = try Conv2d(w.scope("patch_embeddings.projection"), in: channels, out: hiddenSize,
                                kernel: patchSize, stride: patchSize, padding: .symmetric(0))
        positionEmbeddings = try w.tensor("position_embeddings", [1, grid * grid + 1, hiddenSize])
        self.patchSize = patchSize
    }

    /// pixelValues [B, C, H, W] -> tokens [B, 1 + h*w, D], with `positions` [1, 1 + h*w, D] added.
    func callAsFunction(_ pixelValues: Tensor, positions: Tensor) -> Tensor {
        let patches = projection(pixelValues).planar()
        let (batch, dim) = (patches.dim(0), patches.dim(1))
        let count = patches.dim(2) * patches.dim(3)
        shapeCheck(positions.dim(1) == count + 1, "position embeddings \(positions.shape) for \(count) patches")
        let tokens = transposeLastTwo(patches.reshaped([batch, dim, count]))
        let out = Tensor(shape: [batch, count + 1, dim])
        for b in 0..<batch {
            let destination = out.data + b * (count + 1) * dim
            destination.update(from: clsToken.data, count: dim)
            (destination + dim).update(from: tokens.data + b * count * dim, count: count * dim)
            for i in 0..<((count + 1) * dim) { destination[i] += positions.data[i] }
        }
        return out
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
