// torch.nn layers holding their weights; each is built from a WeightScope so its keys are `<scope>.weight`/`.bias`.
import Checkpoint
import TensorCore

/// nn.Linear.
public struct Linear {
    public let weight: Weight  // [out, in]
    public let bias: Tensor?   // [out]

    public init(_ w: WeightScope, in inF: Int, out outF: Int, bias: Bool = true) throws {
        weight = try w.weight("weight", [outF, inF])
        self.bias = bias ? try w.tensor("bias", [outF]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// nn.Conv2d with square kernels; `padding` may be asymmetric (MoVQ's downsampler pads bottom/right).
public struct Conv2d {
    public let weight: Weight  // [out, in, k, k]
    public let bias: Tensor?
    public let stride: Int
    public let padding: Padding2D

    public init(_ w: WeightScope, in inC: Int, out outC: Int, kernel: Int, stride: Int = 1, padding: Padding2D? = nil,
                bias: Bool = true) throws {
        weight = try w.weight("weight", [outC, inC, kernel, kernel])
        self.bias = bias ? try w.tensor("bias", [outC]) : nil
        self.stride = stride
        self.padding = padding ?? .symmetric((kernel - 1) / 2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    /// self(upsampleNearest2x(x)), computed without the upsampled map where the kernel is 3x3 with stride 1 and
    /// padding 1 (every upsampling convolution in these networks).
    public func ofUpsampled2x(_ x: Tensor) -> Tensor {
        guard weight.dim(2) == 3 && weight.dim(3) == 3 && stride == 1 && padding == .symmetric(1) else {
            return self(upsampleNearest2x(x))
        }
        return conv2dOfUpsampled2x(x, weight: weight, bias: bias)
    }
}

/// nn.GroupNorm (affine).
public struct GroupNorm {
    public let weight: Tensor, bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(_ w: WeightScope, groups: Int, channels: Int, eps: Float) throws {
        guard channels % groups == 0 else {
            let reason = "\(w.prefix): \(channels) channels do not divide into \(groups) groups"
            throw CheckpointError.badConfig(path: w.store.component, reason: reason)
        }
        weight = try w.tensor("weight", [channels])
        bias = try w.tensor("bias", [channels])
        self.groups = groups
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor, silu: Bool = false, modulation: NearestModulation? = nil) -> Tensor {
        groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu, modulation: modulation)
    }
}

/// nn.LayerNorm over the last dimension (affine).
public struct LayerNorm {
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ w: WeightScope, dim: Int, eps: Float = 1e-5) throws {
        weight = try w.tensor("weight", [dim])
        bias = try w.tensor("bias", [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}
