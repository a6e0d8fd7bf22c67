// Each network against diffusers/transformers on tiny random-weight checkpoints (tools/make_fixtures.py).
import Checkpoint
import Networks
import TensorCore
import XCTest

final class NetworkParityTests: XCTestCase {
    func checkUNet(_ name: String, hint: Bool = false, variant: String? = nil, timesteps: [Int] = [999, 421, 1]) throws {
        let io = try Fixtures.tensors(name)
        let unet = try UNet2DConditionModel(folder: Fixtures.model(name), variant: variant)
        for t in timesteps {
            let out = unet(sample: io["sample"]!, timestep: Float(t), imageEmbeds: io["image_embeds"]!, hint: hint ? io["hint"]! : nil)
            assertClose(out, io["out_t\(t)"]!, "\(name) out_t\(t)")
        }
    }

    func testUNetTwoLevels() throws { try checkUNet("unet_2lvl") }
    func testUNetFourLevelsThreeLayers() throws { try checkUNet("unet_4lvl_l3") }
    func testUNetInpaintNineChannels() throws { try checkUNet("unet_inpaint") }
    func testUNetDepthHint() throws { try checkUNet("unet_hint", hint: true) }
    func testUNetHalfPrecisionWeights() throws { try checkUNet("unet_fp16", variant: "fp16", timesteps: [500]) }

    func testHalfPrecisionWeightsWidenedPerUseGiveTheSameOutput() throws {
        // Every fp16 matrix left in the mapping (as real-size checkpoints are) rather than widened at load.
        let io = try Fixtures.tensors("unet_fp16")
        let store = try WeightStore(folder: Fixtures.model("unet_fp16"), variant: "fp16")
        store.lazyThresholdBytes = 0
        let config = try UNetConfig(ConfigReader(path: Fixtures.model("unet_fp16") + "/config.json"))
        let unet = try UNet2DConditionModel(config: config, weights: store)
        guard case .half = unet.convInWeight.storage else { return XCTFail("conv_in.weight should stay half precision") }
        let out = unet(sample: io["sample"]!, timestep: 500, imageEmbeds: io["image_embeds"]!)
        assertClose(out, io["out_t500"]!, "unet_fp16 (lazy half weights) out_t500")
    }

    func checkMoVQ(_ name: String) throws {
        let io = try Fixtures.tensors(name)
        let movq = try VQModel(folder: Fixtures.model(name))
        assertClose(movq.encode(io["image"]!), io["latents"]!, "\(name) encode")
        assertClose(movq.decode(io["z"]!), io["decoded"]!, "\(name) decode")
        assertClose(movq.quantize(io["z"]!), io["quantized"]!, "\(name) quantize")
        assertClose(movq.decode(io["z"]!, quantize: true), io["decoded_quantized"]!, "\(name) decode(quantized)")
    }

    func testMoVQTwoLevels() throws { try checkMoVQ("movq_2lvl") }
    func testMoVQFourLevels() throws { try checkMoVQ("movq_4lvl") }

    func checkPrior(_ name: String) throws {
        let io = try Fixtures.tensors(name)
        let prior = try PriorTransformer(folder: Fixtures.model(name))
        let m = io["text_mask"]!
        let mask = (0..<m.dim(0)).map { b in (0..<m.dim(1)).map { m.data[b * m.dim(1) + $0] > 0.5 } }
        var out42: Tensor?
        for t in [999, 42, 0] {
            let out = prior(hiddenStates: io["hidden_states"]!, timestep: Float(t), projEmbedding: io["proj_embedding"]!,
                            encoderHiddenStates: io["encoder_hidden_states"]!, textMask: mask)
            assertClose(out, io["out_t\(t)"]!, "\(name) out_t\(t)")
            if t == 42 { out42 = out }
        }
        assertClose(prior.postProcess(out42!), io["post_processed"]!, "\(name) post_process_latents")
    }

    func testPriorOneLayer() throws { try checkPrior("prior_1l") }
    func testPriorThreeLayers() throws { try checkPrior("prior_3l") }

    func checkCLIPText(_ name: String) throws {
        let io = try Fixtures.tensors(name)
        let model = try CLIPTextModelWithProjection(folder: Fixtures.model(name))
        let idsT = io["input_ids"]!
        let ids = (0..<idsT.dim(0)).map { b in (0..<idsT.dim(1)).map { Int(idsT.data[b * idsT.dim(1) + $0]) } }
        let (embeds, hidden) = model(ids)
        assertClose(embeds, io["text_embeds"]!, "\(name) text_embeds")
        assertClose(hidden, io["last_hidden_state"]!, "\(name) last_hidden_state")
    }

    func testCLIPTextGELU() throws { try checkCLIPText("clip_text_gelu") }
    func testCLIPTextQuickGELUFirstEosPooling() throws { try checkCLIPText("clip_text_quickgelu") }

    func checkCLIPVision(_ name: String) throws {
        let io = try Fixtures.tensors(name)
        let model = try CLIPVisionModelWithProjection(folder: Fixtures.model(name))
        assertClose(model(io["pixel_values"]!), io["image_embeds"]!, "\(name) image_embeds")
    }

    func testCLIPVisionGELU() throws { try checkCLIPVision("clip_vision_gelu") }
    func testCLIPVisionQuickGELU() throws { try checkCLIPVision("clip_vision_quickgelu") }
}
