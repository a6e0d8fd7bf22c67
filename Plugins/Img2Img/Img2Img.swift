// img2img: KandinskyV22Img2ImgCombinedPipeline. The init image is encoded by MoVQ, noised to the first timestep
// of the last `strength` fraction of the schedule, and denoised from there. Unlike diffusers (which swaps width
// and height in preprocess, docs/differences.md), the output has the requested width and height.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([PluginDefinition(
        id: "img2img", name: "Image to image",
        description: "Redraws an init image toward the prompt; strength sets how far (0 keeps the image, 1 ignores it).",
        aliases: ["infer_kandinsky_2_img2img"], inputs: [InputDecl("image", KD_INPUT_IMAGE, help: "the init image")],
        params: CommonParams.generation + [CommonParams.strength], run: run)])
}

func run(_ req: Request) throws {
    guard let image = req.input("image") else { throw PluginFailure("img2img needs an image") }
    let prior = try req.prior()
    let (decoder, info) = try req.decoder(kind: "text2img")
    guard !info.has_hint, info.unet_in_channels == info.latent_channels else {
        throw PluginFailure("model_name is not a text-to-image decoder (its UNet takes \(info.unet_in_channels) channels)", status: Int32(KD_ERR_UNSUPPORTED))
    }
    let g = try req.generator()
    defer { req.s.generator_release(g) }
    let (embeds, negative) = try req.promptEmbeds(prior: prior, prompt: req.string("prompt") ?? "", generator: g)
    let (h, w) = req.outputSize(info)
    let initLatents = try req.encode(decoder, try req.pictureTensor(image, width: w, height: h))
    let steps = req.int("num_inference_steps") ?? 100
    let strength = req.double("strength") ?? 0.3
    let all = try req.timesteps(decoder, steps: steps)
    let keep = min(Int(Double(all.count) * strength), all.count)
    guard keep > 0 else {
        throw PluginFailure("strength \(strength) x num_inference_steps \(steps) leaves no denoising step; raise either")
    }
    let ts = Array(all.suffix(keep))
    let noise = try req.tensor(initLatents.shape)
    req.s.generator_randn(g, noise.raw)
    let latents = try req.addNoise(decoder, initLatents, noise, ts[0])
    let out = try req.denoise(decoder, latents: latents, timesteps: ts, embeds: embeds, negative: negative, generator: g)
    try req.writeOutput(try req.decode(decoder, out))
}
