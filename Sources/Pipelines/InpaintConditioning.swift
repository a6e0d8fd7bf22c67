// The inpainting decoder's conditioning (diffusers pipelines/kandinsky2_2/pipeline_kandinsky2_2_inpainting.py):
// the pixel keep-mask brought to latent size and grown, and the extra UNet input channels built from it. One copy,
// used by every inpainting front end (the inpaint plugin in Swift, the outpaint plugin in C) through the server.
import TensorCore

public enum InpaintConditioning {
    /// keep [1, 1, H, W] (1 = keep, 0 = repaint) -> the latent mask [1, 1, h, w]: F.interpolate(mode="nearest")
    /// to the latents' size, then prepare_mask: every repaint pixel also clears its neighbours (i-1, j), (i, j-1),
    /// (i-1, j-1), (i+1, j), (i, j+1), (i+1, j+1).
    public static func latentMask(keep: Tensor, height latentHeight: Int, width latentWidth: Int) -> Tensor {
        let (height, width) = (keep.dim(2), keep.dim(3))
        let small = Tensor(shape: [1, 1, latentHeight, latentWidth])
        for y in 0..<latentHeight {
            for x in 0..<latentWidth {
                small.data[y * latentWidth + x] =
                    keep.data[(y * height / latentHeight) * width + x * width / latentWidth]
            }
        }
        let grown = small.copy()
        let neighbours = [(-1, 0), (0, -1), (-1, -1), (1, 0), (0, 1), (1, 1)]
        for i in 0..<latentHeight {
            for j in 0..<latentWidth where small.data[i * latentWidth + j] != 1 {
                for (di, dj) in neighbours {
                    let (a, b) = (i + di, j + dj)
                    if a >= 0, a < latentHeight, b >= 0, b < latentWidth { grown.data[a * latentWidth + b] = 0 }
                }
            }
        }
        return grown
    }

    /// The inpainting UNet's extra channels per batch copy: the masked image latents (image * mask), then the mask.
    public static func extraChannels(imageLatents: Tensor, latentMask: Tensor, copies: Int) -> Tensor {
        let channels = imageLatents.dim(1)
        let plane = imageLatents.dim(2) * imageLatents.dim(3)
        let extra = Tensor(shape: [copies, channels + 1, imageLatents.dim(2), imageLatents.dim(3)])
        let mask = latentMask.data
        let image = imageLatents.data
        for copy in 0..<copies {
            let base = extra.data + copy * (channels + 1) * plane
            for c in 0..<channels {
                for i in 0..<plane { base[c * plane + i] = image[c * plane + i] * mask[i] }
            }
            (base + channels * plane).update(from: mask, count: plane)
        }
        return extra
    }
}
