// fusion: KandinskyV22PriorPipeline.interpolate + the text2img decoder. Each item (the prompt, then image1,
// image2, ...) becomes a CLIP image embedding; the embeddings are summed with `weights` (not normalised, as
// diffusers). The negative embedding is the prior run on the negative prompt ("" by default), as interpolate does.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    var prompt = CommonParams.prompt
    prompt.flags = UInt32(KD_PARAM_OPTIONAL)
    prompt.help = "optional text item, mixed first (weights[0]); leave out to mix images only"
    var negative = CommonParams.negativePrompt
    negative.help =
        "text for the negative embedding; absent or \"\" = the zero-image embedding (diffusers' interpolate)"
    let params =
        [prompt, negative] + CommonParams.generation.filter { $0.key != "prompt" && $0.key != "negative_prompt" } + [
            ParamDecl(
                "weights", KD_PARAM_FLOAT_LIST, help: "one weight per item: [prompt,] image1, image2, ...", min: -10,
                max: 10, default: "[0.3, 0.3, 0.4]")
        ]
    return makeEntry([
        PluginDefinition(
            id: "fusion", name: "Image fusion",
            description:
                "Mixes a prompt and two or more images (or only images) by weights in CLIP image-embedding space, "
                + "then decodes the mix.",
            aliases: ["infer_kandinsky_2_image_mixing"],
            inputs: [
                InputDecl(
                    "image", KD_INPUT_IMAGE, help: "images to mix: image1, image2, ...",
                    flags: UInt32(KD_INPUT_REPEATED))
            ],
            params: params, run: run)
    ])
}

func run(_ req: Request) throws {
    let images = req.numberedInputs("image")
    let prompt = req.string("prompt")
    let itemCount = images.count + (prompt == nil ? 0 : 1)
    guard images.count >= 1, itemCount >= 2 else {
        throw PluginFailure("fusion mixes at least two items: give image1 and image2, or a prompt and image1")
    }
    let weights = req.list("weights") ?? []
    guard weights.count == itemCount else {
        throw PluginFailure(
            "weights has \(weights.count) values for \(itemCount) items (\(prompt == nil ? "" : "prompt, ")"
                + "\((1...images.count).map { "image\($0)" }.joined(separator: ", ")))"
        )
    }
    let prior = try req.prior()
    let (decoder, info) = try req.decoder(kind: "text2img")
    let generators = try req.generators()
    // The images' CLIP image embeddings (the image encoder draws nothing, so they are shared by every output).
    let imageItems = try images.map { img in
        var e: OpaquePointer?
        try req.check(req.s.prior_embed_image(prior, img, &e), "image embedding")
        return try req.adopt(e)
    }
    let negText = req.string("negative_prompt") ?? ""
    // Per output image, on its generator in diffusers' order: the prompt item through the prior with no negative
    // prompt of its own (interpolate's negative_prior_prompt), the weighted mix, then interpolate's
    // out_zero = prior(negative_prompt), where "" gives its negative (the zero-image embedding).
    var mixes: [TensorHandle] = []
    var negatives: [TensorHandle] = []
    for g in generators {
        var items: [TensorHandle] = []
        if let prompt {
            items.append(try req.promptEmbeds(prior: prior, prompt: prompt, negativePrompt: nil, generator: g.raw).0)
        }
        items += imageItems
        let mixed = try req.tensor(items[0].shape)
        for (item, weight) in zip(items, weights) {
            for i in 0..<item.count { mixed.data[i] += item.data[i] * Float(weight) }
        }
        mixes.append(mixed)
        let zeroRun = try req.promptEmbeds(prior: prior, prompt: negText, negativePrompt: nil, generator: g.raw)
        negatives.append(negText.isEmpty ? zeroRun.1 : zeroRun.0)
    }

    let (h, w) = try req.outputSize(info)
    let f = Int(info.scale_factor)
    let latents = try req.randn(eachOf: [Int(info.unet_in_channels), h / f, w / f], generators)
    let sampler = try req.sampler(decoder)
    let out = try req.denoise(
        decoder, latents: latents, sampler: sampler, embeds: try req.stack(mixes),
        negative: try req.stack(negatives), generators: generators)
    try req.writeOutputs(decoder, out)
}
