// img2img: KandinskyV22Img2ImgCombinedPipeline. The init image is encoded by MoVQ, noised to the first timestep
// of the last `strength` fraction of the schedule, and denoised from there. Unlike diffusers (which swaps width
// and height in preprocess, docs/differences.md), the output has the requested width and height.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "img2img", name: "Image to image",
            description:
                "Redraws an init image toward the prompt; strength sets how far (0 keeps the image, 1 ignores it).",
            aliases: ["infer_kandinsky_2_img2img"],
            inputs: [InputDecl("image", KD_INPUT_IMAGE, help: "the init image")],
            params: CommonParams.generation + [CommonParams.strength], run: run)
    ])
}

func run(_ req: Request) throws {
    guard let image = req.input("image") else { throw PluginFailure("img2img needs an image") }
    let r = try req.start(kind: "text2img")
    let sampler = try req.requiredSampler(r.decoder, strength: try req.declared("strength", req.double), for: "img2img")
    let latents = try req.noisedInitLatents(
        r.decoder, image: image, width: r.width, height: r.height, sampler: sampler,
        generators: r.generators)
    let out = try req.denoise(
        r.decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generators: r.generators)
    try req.writeOutputs(r.decoder, out)
}
