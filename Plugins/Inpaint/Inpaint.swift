// inpaint: KandinskyV22InpaintCombinedPipeline with the 9-channel inpaint decoder. The mask rules (binarising,
// growing, the feathered seam, the crop box of inpaint_area "masked") and the latent conditioning come from the
// server (ABI 1.2 inpaint_mask / inpaint_crop_box / inpaint_composite, 1.1 inpaint_condition), shared with outpaint;
// docs/inpainting.md gives their order.
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
                    "mask", KD_INPUT_MASK,
                    help: "white (>= 50% grey) = repaint, black = keep; any channel count; a mask of another size "
                        + "is resized (LANCZOS) to the picture's working size"),
            ],
            params: CommonParams.generation + [
                ParamDecl(
                    "invert_mask", KD_PARAM_BOOL,
                    help: "swap the mask's meaning (black = repaint)", default: "false"),
                CommonParams.keepUnmasked,
                CommonParams.maskBlur,
                ParamDecl(
                    "mask_grow", KD_PARAM_INT,
                    help: "pixels to grow the region to repaint by (negative: shrink), applied before the blur",
                    min: -256, max: 256, default: "0"),
                ParamDecl(
                    "inpaint_area", KD_PARAM_STRING,
                    help: "whole: the picture stretched to width x height; masked: only the mask's surroundings, "
                        + "inpainted at width x height and stitched back (the output keeps the picture's size)",
                    default: "whole"),
                ParamDecl(
                    "masked_padding", KD_PARAM_INT,
                    help: "inpaint_area masked: pixels of context around the mask's bounding box", min: 0,
                    max: 4096, default: "32"),
            ],
            run: run)
    ])
}

func run(_ req: Request) throws {
    guard let image = req.input("image"), let mask = req.input("mask") else {
        throw PluginFailure("inpaint needs an image and a mask")
    }
    let area = try req.declared("inpaint_area", req.string)
    guard area == "whole" || area == "masked" else {
        throw PluginFailure("inpaint_area '\(area)': expected whole or masked", status: Int32(KD_ERR_INVALID_ARGUMENT))
    }
    let inverted = try req.declared("invert_mask", req.int) != 0
    let grow = try req.declared("mask_grow", req.int)
    let keepUnmasked = try req.declared("keep_unmasked", req.int) != 0
    let blur = try req.declared("mask_blur", req.int)
    let r = try req.start(kind: "inpaint")
    if area == "whole" {
        // diffusers' prepare_mask_and_masked_image: image and mask stretched to the output size.
        let keep = try req.inpaintMask(mask, width: r.width, height: r.height, inverted: inverted, grow: grow)
        let generated = try inpaint(
            req, r, picture: try req.pictureTensor(image, width: r.width, height: r.height),
            keep: keep)
        let outputs = try generated.enumerated().map { index, pixels in try req.writeOutput(pixels, index: index) }
        guard keepUnmasked else { return }
        try req.resized(image, width: r.width, height: r.height, filter: KD_RESAMPLE_BICUBIC, reducingGap: 1) {
            original in
            var original = original
            for out in outputs { try req.inpaintComposite(out, over: &original, keep: keep, blur: blur) }
        }
        return
    }
    try inpaintMaskedArea(
        req, r, image: image, mask: mask, inverted: inverted, grow: grow, keepUnmasked: keepUnmasked,
        blur: blur)
}

/// inpaint_area "masked": the crop box around the mask (padding, widened to width : height), inpainted at width x
/// height, scaled back and stitched into the picture, which keeps its size. Everything outside the box stays the
/// picture's bytes; inside, keep_unmasked decides as in "whole".
func inpaintMaskedArea(
    _ req: Request, _ r: Start, image: UnsafePointer<kd_image_t>, mask: UnsafePointer<kd_image_t>, inverted: Bool,
    grow: Int, keepUnmasked: Bool, blur: Int
) throws {
    let (pictureWidth, pictureHeight) = (Int(image.pointee.width), Int(image.pointee.height))
    let fullKeep = try req.inpaintMask(mask, width: pictureWidth, height: pictureHeight, inverted: inverted, grow: grow)
    let box = try req.inpaintCropBox(
        fullKeep, padding: try req.declared("masked_padding", req.int), aspectWidth: r.width, aspectHeight: r.height)
    // The crop's mask: the full-size region cut out as a grey picture (white = repaint), binarised again at the
    // working size by the same rule.
    let cropMask = OwnedImage(width: box.width, height: box.height, channels: 1)
    for y in 0..<box.height {
        for x in 0..<box.width where fullKeep.data[(box.y + y) * pictureWidth + box.x + x] < 0.5 {
            cropMask.image.pointee.data[y * box.width + x] = 255
        }
    }
    let keep = try req.inpaintMask(cropMask.image, width: r.width, height: r.height, inverted: false, grow: 0)
    var crop = cropView(image, x: box.x, y: box.y, width: box.width, height: box.height)
    let generated = try inpaint(
        req, r, picture: try req.pictureTensor(&crop, width: r.width, height: r.height),
        keep: keep)
    // Outside the box the output holds nothing yet: the composite gives every kept pixel the picture's bytes, under
    // the mask's region (keep_unmasked) or under the box alone (off: the whole crop as generated).
    var stitch = fullKeep
    if !keepUnmasked {
        stitch = try req.tensor([1, 1, pictureHeight, pictureWidth])
        for y in 0..<pictureHeight {
            for x in 0..<pictureWidth {
                let inside = x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height
                stitch.data[y * pictureWidth + x] = inside ? 0 : 1
            }
        }
    }
    for (index, pixels) in generated.enumerated() {
        try stitchCrop(
            req, pixels, into: index, image: image, box: box, stitch: stitch, blur: keepUnmasked ? blur : 0)
    }
}

/// Output image `index`: the generated crop `pixels` scaled back into `box` of a picture of `image`'s size, then
/// composited over `image` under `stitch`.
func stitchCrop(
    _ req: Request, _ pixels: TensorHandle, into index: Int, image: UnsafePointer<kd_image_t>,
    box: (x: Int, y: Int, width: Int, height: Int), stitch: TensorHandle, blur: Int
) throws {
    let shape = pixels.shape
    let small = OwnedImage(width: shape[3], height: shape[2], channels: 3)
    try req.writePixels(pixels, into: small.image)
    let out = try req.allocateOutput(width: Int(image.pointee.width), height: Int(image.pointee.height), index: index)
    try req.resized(small.image, width: box.width, height: box.height, filter: KD_RESAMPLE_LANCZOS, reducingGap: 0) {
        back in
        let outRowBytes = Int(out.pointee.row_bytes)
        let backRowBytes = Int(back.row_bytes)
        let target: UnsafeMutablePointer<UInt8> = out.pointee.data + box.y * outRowBytes + box.x * 3
        let source: UnsafeMutablePointer<UInt8> = back.data
        for y in 0..<box.height {
            (target + y * outRowBytes).update(from: source + y * backRowBytes, count: box.width * 3)
        }
    }
    try req.inpaintComposite(out, over: image, keep: stitch, blur: blur)
}

/// The inpainting denoise at the run's size: `picture` [1, 3, H, W] in [-1, 1] and `keep` [1, 1, H, W] -> one
/// decoded picture [1, 3, H, W] in [0, 1] per image of the run, the known region held on the original's noisy
/// trajectory (diffusers), each image with its own noise.
func inpaint(_ req: Request, _ r: Start, picture: TensorHandle, keep: TensorHandle) throws -> [TensorHandle] {
    let decoder = r.decoder
    let lc = Int(r.info.latent_channels)
    let count = r.generators.count
    let imageLatents = try req.encode(decoder, picture)
    let (latentMask, extra) = try req.inpaintCondition(decoder, keep: keep, imageLatents: imageLatents)
    let sampler = try req.requiredSampler(decoder, for: "inpainting")
    let latents = try req.randn(eachOf: [lc, r.latentHeight, r.latentWidth], r.generators)
    let noise = try req.tensor(latents.shape)
    noise.data.update(from: latents.data, count: latents.count)
    let plane = r.latentHeight * r.latentWidth
    let ts = sampler.timesteps
    var hookError: Error?
    let out = try req.denoise(
        decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generators: r.generators, extra: extra
    ) { i, images, lat in
        // Keep the known region on the noisy trajectory of the original image.
        do {
            let known = try req.repeated(imageLatents, times: images.count)
            let proper =
                i < ts.count - 1
                ? try req.addNoise(decoder, sampler, known, try req.rows(noise, images), ts[i + 1]) : known
            blend(lat.data, known: proper.data, mask: latentMask.data, channels: lc * images.count, plane: plane)
        } catch { hookError = error }
    }
    if let hookError { throw hookError }
    let known = try req.repeated(imageLatents, times: count)
    blend(out.data, known: known.data, mask: latentMask.data, channels: lc * count, plane: plane)
    return try (0..<count).map { try req.decode(decoder, out, image: $0) }
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
