// controlnet-depth: KandinskyV22ControlnetPipeline (and, with an init image, KandinskyV22ControlnetImg2ImgPipeline)
// on the image_hint decoder. The depth map (near = bright) becomes the hint: grey, stretched to the output size
// with bicubic resampling, replicated to 3 channels, / 255.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([PluginDefinition(
        id: "controlnet-depth", name: "Depth ControlNet",
        description: "Generates an image whose layout follows a depth map; with an init image, redraws it (img2img form, strength).",
        aliases: ["infer_kandinsky_2_controlnet_depth"],
        inputs: [InputDecl("depth", KD_INPUT_DEPTH, help: "depth map, near = bright"),
                 InputDecl("image", KD_INPUT_IMAGE, help: "optional init image (img2img form)", flags: UInt32(KD_INPUT_OPTIONAL))],
        params: CommonParams.generation + [CommonParams.strength], run: run)])
}

func run(_ req: Request) throws {
    guard let depth = req.input("depth") else { throw PluginFailure("controlnet-depth needs a depth map") }
    let prior = try req.prior()
    let (decoder, info) = try req.decoder(kind: "controlnet")
    guard info.has_hint else { throw PluginFailure("model_name is not a ControlNet-depth decoder (no image_hint)", status: Int32(KD_ERR_UNSUPPORTED)) }
    let g = try req.generator()
    defer { req.s.generator_release(g) }
    let (embeds, negative) = try req.promptEmbeds(prior: prior, prompt: req.string("prompt") ?? "", generator: g)
    let (h, w) = req.outputSize(info)
    let f = Int(info.scale_factor)
    let hint = try req.tensor([1, 3, h, w])
    try req.resized(depth, width: w, height: h, filter: KD_RESAMPLE_BICUBIC, reducingGap: 0) { d in
        let ch = Int(d.channels), plane = h * w
        for y in 0..<h {
            let row = d.data! + y * Int(d.row_bytes)
            for x in 0..<w {
                let grey = greyValue(row, x: x, channels: ch)
                for c in 0..<3 { hint.data[c * plane + y * w + x] = Float(grey) / 255 }
            }
        }
    }
    var ts = try req.timesteps(decoder, steps: req.int("num_inference_steps") ?? 100)
    let latents: TensorHandle
    if let image = req.input("image") {
        (latents, ts) = try req.noisedInitLatents(decoder, image: image, width: w, height: h, timesteps: ts, generator: g)
    } else {
        latents = try req.tensor([1, Int(info.latent_channels), h / f, w / f])
        req.s.generator_randn(g, latents.raw)
    }
    let out = try req.denoise(decoder, latents: latents, timesteps: ts, embeds: embeds, negative: negative, generator: g, hint: hint)
    try req.writeOutput(try req.decode(decoder, out))
}
