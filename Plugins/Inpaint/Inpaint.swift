// inpaint: KandinskyV22InpaintCombinedPipeline with the 9-channel inpaint decoder. Mask: white = repaint
// (diffusers >= 0.19), binarised at 0.5 after a LANCZOS resize; image and mask are stretched to the output size.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([PluginDefinition(
        id: "inpaint", name: "Inpainting",
        description: "Repaints the white part of a mask to match the prompt and keeps the rest of the image.",
        aliases: ["infer_kandinsky_2_inpaint"],
        inputs: [InputDecl("image", KD_INPUT_IMAGE, help: "the picture to edit"),
                 InputDecl("mask", KD_INPUT_MASK, help: "white (>= 50% grey) = repaint, black = keep; any channel count")],
        params: CommonParams.generation + [ParamDecl("invert_mask", KD_PARAM_BOOL, help: "swap the mask's meaning (black = repaint)", default: "false")],
        run: run)])
}

func run(_ req: Request) throws {
    guard let image = req.input("image"), let mask = req.input("mask") else { throw PluginFailure("inpaint needs an image and a mask") }
    let r = try req.start(kind: "inpaint")
    let decoder = r.decoder, lc = Int(r.info.latent_channels)
    let (h, w, lh, lw) = (r.height, r.width, r.latentHeight, r.latentWidth)

    // prepare_mask_and_masked_image: LANCZOS resize in the mask's own mode, convert("L"), >= 0.5 -> 1, then 1 - mask.
    let invert = (req.int("invert_mask") ?? 0) != 0
    var keep = [Float](repeating: 0, count: h * w)
    try req.resized(mask, width: w, height: h, filter: KD_RESAMPLE_LANCZOS, reducingGap: 0) { m in
        let ch = Int(m.channels)
        for y in 0..<h {
            let row = m.data! + y * Int(m.row_bytes)
            for x in 0..<w {
                let grey = greyValue(row, x: x, channels: ch)
                let repaint = Float(grey) / 255 >= 0.5
                keep[y * w + x] = (repaint != invert) ? 0 : 1
            }
        }
    }
    let imageLatents = try req.encode(decoder, try req.pictureTensor(image, width: w, height: h))

    // F.interpolate(mask, latent size, "nearest"), then prepare_mask: every repaint pixel also clears its
    // neighbours (i-1,j), (i,j-1), (i-1,j-1), (i+1,j), (i,j+1), (i+1,j+1).
    var small = [Float](repeating: 0, count: lh * lw)
    for y in 0..<lh { for x in 0..<lw { small[y * lw + x] = keep[(y * h / lh) * w + x * w / lw] } }
    var grown = small
    for i in 0..<lh {
        for j in 0..<lw where small[i * lw + j] != 1 {
            for (di, dj) in [(-1, 0), (0, -1), (-1, -1), (1, 0), (0, 1), (1, 1)] {
                let (a, b) = (i + di, j + dj)
                if a >= 0, a < lh, b >= 0, b < lw { grown[a * lw + b] = 0 }
            }
        }
    }
    let plane = lh * lw
    let cfg = (req.double("guidance_scale") ?? 1) > 1
    let copies = cfg ? 2 : 1
    // extra channels per batch item: masked image latents (image * mask), then the mask.
    let extra = try req.tensor([copies, lc + 1, lh, lw])
    for b in 0..<copies {
        let base = extra.data + b * (lc + 1) * plane
        for c in 0..<lc { for i in 0..<plane { base[c * plane + i] = imageLatents.data[c * plane + i] * grown[i] } }
        for i in 0..<plane { base[lc * plane + i] = grown[i] }
    }
    let latents = try req.randn([1, lc, lh, lw], r.generator)
    let noise = try req.tensor(latents.shape)
    noise.data.update(from: latents.data, count: latents.count)
    let ts = try req.timesteps(decoder, steps: req.int("num_inference_steps") ?? 100)
    var hookError: Error?
    let out = try req.denoise(decoder, latents: latents, timesteps: ts, embeds: r.embeds, negative: r.negative, generator: r.generator,
                              extra: extra) { i, lat in
        // Keep the known region on the noisy trajectory of the original image.
        do {
            let proper = i < ts.count - 1 ? try req.addNoise(decoder, imageLatents, noise, ts[i + 1]) : imageLatents
            blend(lat.data, known: proper.data, mask: grown, channels: lc, plane: plane)
        } catch { hookError = error }
    }
    if let hookError { throw hookError }
    blend(out.data, known: imageLatents.data, mask: grown, channels: lc, plane: plane)
    try req.writeOutput(try req.decode(decoder, out))
}

/// latents = mask * known + (1 - mask) * latents
func blend(_ lat: UnsafeMutablePointer<Float>, known: UnsafeMutablePointer<Float>, mask: [Float], channels: Int, plane: Int) {
    for c in 0..<channels {
        for i in 0..<plane {
            let k = c * plane + i
            lat[k] = mask[i] * known[k] + (1 - mask[i]) * lat[k]
        }
    }
}
