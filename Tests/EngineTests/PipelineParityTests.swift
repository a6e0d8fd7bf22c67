// Whole pipelines against diffusers (KandinskyV22PriorPipeline, KandinskyV22CombinedPipeline) on a tiny model
// set, one torch-compatible generator shared by prior and decoder as in diffusers' combined pipelines.
import Pipelines
import TensorCore
import TorchRandom
import XCTest

/// uint8 conversion as diffusers' numpy_to_pil: round(x * 255).
func toBytes(_ t: Tensor) -> [Int] { t.array.map { Int(($0 * 255).rounded()) } }

/// The product's bar: uint8 images within 2 levels on at least 99.5% of values.
func assertImagesMatch(_ got: Tensor, _ expected: Tensor, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    let a = toBytes(got), b = toBytes(expected)
    guard a.count == b.count else { return XCTFail("\(name): \(a.count) vs \(b.count) values", file: file, line: line) }
    let off = zip(a, b).filter { abs($0 - $1) > 2 }.count
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(Double(off), 0.005 * Double(a.count),
                             "\(name): \(off) of \(a.count) uint8 values differ by more than 2 (worst \(worst))", file: file, line: line)
}

/// [1, 3, H, W] -> [1, H, W, 3] (diffusers' numpy output layout).
func channelsLast(_ image: Tensor) -> Tensor {
    transposeLastTwo(image.reshaped([3, image.dim(2) * image.dim(3)])).reshaped([1, image.dim(2), image.dim(3), 3])
}

final class PipelineParityTests: XCTestCase {
    func testPriorAndText2ImgMatchDiffusers() throws {
        let io = try Fixtures.tensors("pipelines")
        let cases = try Fixtures.json("pipelines.json") as! [[String: Any]]
        let prior = try PriorPipeline(folder: Fixtures.model("pipe_prior"))
        let decoder = try DecoderPipeline(folder: Fixtures.model("pipe_decoder"))
        for (i, c) in cases.enumerated() {
            let seed = UInt64(c["seed"] as! Int)
            let prompt = c["prompt"] as! String, negative = c["negative_prompt"] as? String
            let (h, w, steps) = (c["h"] as! Int, c["w"] as! Int, c["steps"] as! Int)
            let guidance = Float(c["guidance"] as! Double)
            let g = TorchGenerator(seed: seed)
            let (emb, neg) = try prior(prompt: prompt, negativePrompt: negative, steps: c["prior_steps"] as! Int,
                                       guidance: Float(c["prior_guidance"] as! Double), generator: g)
            assertClose(emb, io["case\(i).image_embeds"]!, "case \(i) image_embeds")
            assertClose(neg, io["case\(i).negative_image_embeds"]!, "case \(i) negative_image_embeds")
            let cond = DecoderPipeline.Conditioning(imageEmbeds: emb, negativeImageEmbeds: neg)

            // Free-running, as a user runs it. DDPM's first steps scale the UNet's float rounding by up to
            // 1/sqrt(alpha_cumprod) (25x at t=991), so the bar here is the product's uint8 one.
            let freeRunning = try decoder.text2img(cond, height: h, width: w, steps: steps, guidance: guidance, generator: g)
            assertImagesMatch(channelsLast(freeRunning), io["case\(i).image"]!, "case \(i) image (seed \(seed))")

            // Step by step, each step started from diffusers' own latents: the loop's arithmetic at 1e-4 per step.
            let replay = TorchGenerator(seed: seed)
            _ = try prior(prompt: prompt, negativePrompt: negative, steps: c["prior_steps"] as! Int,
                          guidance: Float(c["prior_guidance"] as! Double), generator: replay)
            decoder.scheduler.setTimesteps(steps)
            let (lh, lw) = decoder.latentSize(height: h, width: w)
            let start = Tensor(shape: [1, 4, lh, lw])
            replay.fillNormal(start.data, start.count)
            let final = try decoder.denoise(latents: start, timesteps: decoder.scheduler.timesteps, conditioning: cond, guidance: guidance,
                                            generator: replay, afterStep: { k, latents in
                let expected = io["case\(i).latents_step\(k)"]!
                assertClose(latents, expected, "case \(i) latents after step \(k)")
                return expected
            })
            // MoVQ on diffusers' final latents, before the [0, 1] clamp. These latents are large (outputs up to ~60),
            // where float32 attention logits round differently in any two implementations; so the bar is the exact
            // (float64) decode: our error may not exceed torch-float32's own error by more than 2x.
            let ours = decoder.movq.decode(final)
            let exact = io["case\(i).decoded_final_f64"]!, torch32 = io["case\(i).decoded_final_raw"]!
            let ourErr = maxAbsDiff(ours, exact), torchErr = maxAbsDiff(torch32, exact)
            XCTAssertLessThanOrEqual(ourErr, max(2 * torchErr, 1e-4 * maxAbs(exact)),
                                     "case \(i) decode of final latents: our max error vs float64 \(ourErr), torch float32's \(torchErr)")
        }
    }
}
