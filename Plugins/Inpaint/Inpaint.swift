// inpaint: KandinskyV22InpaintCombinedPipeline with the 9-channel inpaint decoder. Mask: white = repaint
// (diffusers >= 0.19), binarised at 0.5 after a LANCZOS resize; image and mask are stretched to the output size.
// The latent mask and the UNet's extra channels come from the server (inpaint_condition), shared with outpaint.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "inpaint", name: "Inpainting",
            description: "Repaints the white part of a mask to match the prompt and keeps the rest of the image.",
            aliases: ["infer_kandinsky_2_inpaint"],
            inputs: [
                InputDecl("image", KD_INPUT_IMAGE, help: "the picture to edit"),
                InputDecl(
                    "mask", KD_INPUT_MASK, help: "white (>= 50% grey) = repaint, black = keep; any channel count"),
            ],
            params: CommonParams.generation + [
                ParamDecl(
                    "invert_mask", KD_PARAM_BOOL,
                    help: "swap the mask's meaning (black = repaint)", default: "false")
            ],
            run: run)
    ])
}

func run(_ req: Request) throws {
    guard let image = req.input("image"), let mask = req.input("mask") else {
        throw PluginFailure("inpaint needs an image and a mask")
    }
    let r = try req.start(kind: "inpaint")
    let decoder = r.decoder
    let lc = Int(r.info.latent_channels)
    let (h, w) = (r.height, r.width)

    // prepare_mask_and_masked_image: LANCZOS resize in the mask's own mode, convert("L"), >= 0.5 -> repaint.
    let invert = try req.declared("invert_mask", req.int) != 0
    let keep = try req.tensor([1, 1, h, w])
    try req.resized(mask, width: w, height: h, filter: KD_RESAMPLE_LANCZOS, reducingGap: 0) { m in
        let ch = Int(m.channels)
        for y in 0..<h {
            let row = m.data! + y * Int(m.row_bytes)
            for x in 0..<w {
                let repaint = Float(greyValue(row, x: x, channels: ch)) / 255 >= 0.5
                keep.data[y * w + x] = (repaint != invert) ? 0 : 1
            }
        }
    }
    let imageLatents = try req.encode(decoder, try req.pictureTensor(image, width: w, height: h))
    let (latentMask, extra) = try req.inpaintCondition(decoder, keep: keep, imageLatents: imageLatents)
    let sampler = try req.requiredSampler(decoder, for: "inpainting")
    let latents = try req.randn([1, lc, r.latentHeight, r.latentWidth], r.generator)
    let noise = try req.tensor(latents.shape)
    noise.data.update(from: latents.data, count: latents.count)
    let ts = sampler.timesteps
    var hookError: Error?
    let out = try req.denoise(
        decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generator: r.generator, extra: extra
    ) { i, lat in
        // Keep the known region on the noisy trajectory of the original image.
        do {
            let proper =
                i < ts.count - 1 ? try req.addNoise(decoder, sampler, imageLatents, noise, ts[i + 1]) : imageLatents
            blend(lat.data, known: proper.data, mask: latentMask.data, channels: lc, plane: latents.count / lc)
        } catch { hookError = error }
    }
    if let hookError { throw hookError }
    blend(out.data, known: imageLatents.data, mask: latentMask.data, channels: lc, plane: latents.count / lc)
    try req.writeOutput(try req.decode(decoder, out))
}

/// latents = mask * known + (1 - mask) * latents
func blend(
    _ lat: UnsafeMutablePointer<Float>, known: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>,
    channels: Int, plane: Int
) {
    for c in 0..<channels {
        for i in 0..<plane {
            let k = c * plane + i
            lat[k] = mask[i] * known[k] + (1 - mask[i]) * lat[k]
        }
    }
}
