// controlnet-depth: KandinskyV22ControlnetPipeline (and, with an init image, KandinskyV22ControlnetImg2ImgPipeline)
// on the image_hint decoder. The depth map (near = bright) becomes the hint: grey, stretched to the output size
// with bicubic resampling, replicated to 3 channels, / 255.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "controlnet-depth", name: "Depth ControlNet",
            description:
                "Generates an image whose layout follows a depth map; with an init image, redraws it "
                + "(img2img form, strength).",
            aliases: ["infer_kandinsky_2_controlnet_depth"],
            inputs: [
                InputDecl("depth", KD_INPUT_DEPTH, help: "depth map, near = bright"),
                InputDecl(
                    "image", KD_INPUT_IMAGE, help: "optional init image (img2img form)",
                    flags: UInt32(KD_INPUT_OPTIONAL)),
            ],
            params: CommonParams.generation + [CommonParams.strength], run: run)
    ])
}

func run(_ req: Request) throws {
    guard let depth = req.input("depth") else { throw PluginFailure("controlnet-depth needs a depth map") }
    let r = try req.start(kind: "controlnet")
    let (h, w) = (r.height, r.width)
    let hint = try req.tensor([1, 3, h, w])
    try req.resized(depth, width: w, height: h, filter: KD_RESAMPLE_BICUBIC, reducingGap: 0) { d in
        let ch = Int(d.channels)
        let plane = h * w
        for y in 0..<h {
            let row = d.data! + y * Int(d.row_bytes)
            for x in 0..<w {
                let grey = greyValue(row, x: x, channels: ch)
                for c in 0..<3 { hint.data[c * plane + y * w + x] = Float(grey) / 255 }
            }
        }
    }
    let latents: TensorHandle
    let sampler: SamplerHandle?
    if let image = req.input("image") {
        let strength = try req.declared("strength", req.double)
        let cut = try req.requiredSampler(r.decoder, strength: strength, for: "controlnet-depth with an init image")
        latents = try req.noisedInitLatents(
            r.decoder, image: image, width: w, height: h, sampler: cut, generator: r.generator)
        sampler = cut
    } else {
        latents = try req.randn([1, Int(r.info.latent_channels), r.latentHeight, r.latentWidth], r.generator)
        sampler = try req.sampler(r.decoder)
    }
    let out = try req.denoise(
        r.decoder, latents: latents, sampler: sampler, embeds: r.embeds, negative: r.negative,
        generator: r.generator, hint: hint)
    try req.writeOutput(try req.decode(r.decoder, out))
}
