// torch.nn.ConvTranspose2d with kernel_size == stride and no padding (DPT's reassemble upsampling): the output
// blocks do not overlap, so it is one product [O*k*k, C] x [C, H*W] scattered into k x k blocks.

/// x [B, C, H, W], weight [C, O, k, k], bias [O] -> [B, O, H*k, W*k].
public func convTranspose2d(_ x: Tensor, weight: Weight, bias: Tensor?, stride: Int) -> Tensor {
    let x = x.planar()
    let (batch, inChannels, height, width) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    let (outChannels, kernel) = (weight.dim(1), weight.dim(2))
    shapeCheck(weight.dim(0) == inChannels && kernel == stride && weight.dim(3) == kernel,
               "convTranspose2d: x \(x.shape), weight \(weight.shape), stride \(stride)")
    let pixels = height * width, rows = outChannels * kernel * kernel
    let out = Tensor(shape: [batch, outChannels, height * kernel, width * kernel])
    let product = MemoryPool.shared.acquireFloats(rows * pixels)
    defer { MemoryPool.shared.releaseFloats(product) }
    weight.withFloat32 { w in
        for b in 0..<batch {
            sgemm(transA: true, m: rows, n: pixels, k: inChannels, a: w, lda: rows, b: x.data + b * inChannels * pixels,
                  ldb: pixels, c: product, ldc: pixels)
            let outWidth = width * kernel
            parallelFor(outChannels) { range in
                for o in range {
                    let shift = bias?.data[o] ?? 0
                    let plane = out.data + (b * outChannels + o) * pixels * kernel * kernel
                    for i in 0..<kernel {
                        for j in 0..<kernel {
                            let values = product + ((o * kernel + i) * kernel + j) * pixels
                            for y in 0..<height {
                                let line = plane + (y * kernel + i) * outWidth + j
                                for x in 0..<width { line[x * kernel] = values[y * width + x] + shift }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}
