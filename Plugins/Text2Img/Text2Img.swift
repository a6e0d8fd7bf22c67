// text2img: KandinskyV22CombinedPipeline (prior, then the decoder on fresh latents).
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "text2img", name: "Text to image",
            description:
                "Generates an image from a prompt: the prior turns the prompt into a CLIP image embedding, the decoder "
                + "UNet denoises MoVQ latents conditioned on it.",
            aliases: ["infer_kandinsky_2"], inputs: [], params: CommonParams.generation, run: run)
    ])
}

func run(_ req: Request) throws {
    let r = try req.start(kind: "text2img")
    let latents = try req.randn(
        eachOf: [Int(r.info.unet_in_channels), r.latentHeight, r.latentWidth], r.generators)
    let sampler = try req.sampler(r.decoder)
    let out = try req.denoise(
        r.decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generators: r.generators)
    try req.writeOutputs(r.decoder, out)
}
