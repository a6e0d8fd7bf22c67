// controlnet-depth: KandinskyV22ControlnetPipeline (and, with an init image, KandinskyV22ControlnetImg2ImgPipeline)
// on the image_hint decoder. The depth map (near = bright) becomes the hint: grey, stretched to the output size
// with bicubic resampling, replicated to 3 channels, / 255. Given a picture instead of a depth map, it follows
// Ikomia's infer_kandinsky_2_controlnet_depth: the picture is resized to the output size, its depth is estimated
// (transformers' depth-estimation pipeline, depth_model_name), and that 8-bit depth picture is the depth map.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "controlnet-depth", name: "Depth ControlNet",
            description:
                "Generates an image whose layout follows a depth map, given (--depth) or estimated from a picture "
                + "(--image alone); with both, the picture is the init image it redraws (img2img form, strength).",
            aliases: ["infer_kandinsky_2_controlnet_depth"],
            inputs: [
                InputDecl(
                    "depth", KD_INPUT_DEPTH,
                    help: "depth map, near = bright (any size: stretched to the output; a 16-bit grey PNG keeps its "
                        + "16 bits)",
                    flags: UInt32(KD_INPUT_OPTIONAL | KD_INPUT_WIDE)),
                InputDecl(
                    "image", KD_INPUT_IMAGE,
                    help: "a picture: alone, its estimated depth drives the layout; with --depth, the init image",
                    flags: UInt32(KD_INPUT_OPTIONAL)),
            ],
            params: CommonParams.generation + [CommonParams.strength, CommonParams.depthModel], run: run)
    ])
}

func run(_ req: Request) throws {
    let depthMap = req.input("depth")
    let picture = req.input("image")
    guard depthMap != nil || picture != nil else {
        throw PluginFailure(
            "controlnet-depth needs --depth (a depth map) or --image (a picture to estimate depth from)")
    }
    // Loaded before the prior runs, so that a missing depth model fails at once.
    let estimator = depthMap == nil ? try req.depthEstimator() : nil
    let r = try req.start(kind: "controlnet")
    let (h, w) = (r.height, r.width)
    let hint: TensorHandle
    if let depthMap {
        hint = try depthHint(req, depthMap, width: w, height: h)
    } else {
        hint = try req.resized(picture!, width: w, height: h, filter: KD_RESAMPLE_BICUBIC, reducingGap: 0) { photo in
            var photo = photo
            return try req.estimatedDepth(&photo, estimator: estimator!) { depth in
                var depth = depth
                return try depthHint(req, &depth, width: w, height: h)
            }
        }
    }
    let latents: TensorHandle
    let sampler: SamplerHandle?
    if let image = picture, depthMap != nil {
        let strength = try req.declared("strength", req.double)
        let cut = try req.requiredSampler(r.decoder, strength: strength, for: "controlnet-depth with an init image")
        latents = try req.noisedInitLatents(
            r.decoder, image: image, width: w, height: h, sampler: cut, generators: r.generators)
        sampler = cut
    } else {
        latents = try req.randn(eachOf: [Int(r.info.latent_channels), r.latentHeight, r.latentWidth], r.generators)
        sampler = try req.sampler(r.decoder)
    }
    let out = try req.denoise(
        r.decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generators: r.generators, hint: hint)
    try req.writeOutputs(r.decoder, out)
}

/// The hint [1, 3, H, W]: the depth map's grey (Pillow's convert("L")) resized bicubic to the output, / 255; a
/// 16-bit grey map (Pillow's mode I;16) resized as I;16 and / 65535, so its precision reaches the hint.
func depthHint(_ req: Request, _ depth: UnsafePointer<kd_image_t>, width w: Int, height h: Int) throws -> TensorHandle {
    let hint = try req.tensor([1, 3, h, w])
    try req.resized(depth, width: w, height: h, filter: KD_RESAMPLE_BICUBIC, reducingGap: 0) { d in
        depthHintPlane(d, into: hint.data)
    }
    for c in 1..<3 { (hint.data + c * h * w).update(from: hint.data, count: h * w) }
    return hint
}
