// text2img: KandinskyV22CombinedPipeline (prior, then the decoder on fresh latents).
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([PluginDefinition(
        id: "text2img", name: "Text to image",
        description: "Generates an image from a prompt: the prior turns the prompt into a CLIP image embedding, the decoder UNet denoises MoVQ latents conditioned on it.",
        aliases: ["infer_kandinsky_2"], inputs: [], params: CommonParams.generation, run: run)])
}

func run(_ req: Request) throws {
    let prior = try req.prior()
    let (decoder, info) = try req.text2imgDecoder()
    let g = try req.generator()
    defer { req.s.generator_release(g) }
    let (embeds, negative) = try req.promptEmbeds(prior: prior, prompt: req.string("prompt") ?? "", generator: g)
    let (h, w) = req.outputSize(info)
    let f = Int(info.scale_factor)
    let latents = try req.tensor([1, Int(info.unet_in_channels), h / f, w / f])
    req.s.generator_randn(g, latents.raw)
    let ts = try req.timesteps(decoder, steps: req.int("num_inference_steps") ?? 100)
    let out = try req.denoise(decoder, latents: latents, timesteps: ts, embeds: embeds, negative: negative, generator: g)
    try req.writeOutput(try req.decode(decoder, out))
}
