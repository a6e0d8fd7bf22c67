// One forward pass of every network at the published kandinsky-community sizes, against diffusers/transformers.
// The checkpoints are several GB and made on demand: `python3 tools/make_real_size.py DIR`, then
// `KANDINSKY_REAL_SIZE=DIR swift test -c release --filter RealSizeTests`. Skipped when the variable is unset.
import Checkpoint
import Foundation
import Networks
import TensorCore
import XCTest

final class RealSizeTests: XCTestCase {
    func folder(_ name: String) throws -> (String, [String: Tensor]) {
        guard let root = ProcessInfo.processInfo.environment["KANDINSKY_REAL_SIZE"] else {
            throw XCTSkip("set KANDINSKY_REAL_SIZE to the folder made by tools/make_real_size.py")
        }
        let dir = (root as NSString).appendingPathComponent(name)
        let file = try SafetensorsFile(path: dir + "/reference_io.safetensors")
        return (dir, file.entries.mapValues { file.load($0) })
    }

    func checkUNet(_ name: String) throws {
        let (dir, io) = try folder(name)
        let unet = try UNet2DConditionModel(folder: dir, variant: "fp16")
        let out = unet(sample: io["sample"]!, timestep: 500, imageEmbeds: io["image_embeds"]!, hint: io["hint"])
        assertClose(out, io["out_t500"]!, "\(name) out_t500")
    }

    func testDecoderUNet() throws { try checkUNet("unet_decoder") }
    func testInpaintUNet() throws { try checkUNet("unet_inpaint") }
    func testControlNetDepthUNet() throws { try checkUNet("unet_controlnet") }

    func testMoVQ() throws {
        let (dir, io) = try folder("movq")
        let movq = try VQModel(folder: dir, variant: "fp16")
        assertClose(movq.encode(io["image"]!), io["latents"]!, "movq encode")
        assertClose(movq.decode(io["z"]!), io["decoded"]!, "movq decode")
    }

    func testPrior() throws {
        let (dir, io) = try folder("prior")
        let prior = try PriorTransformer(folder: dir, variant: "fp16")
        let m = io["text_mask"]!
        let mask = (0..<2).map { b in (0..<77).map { m.data[b * 77 + $0] > 0.5 } }
        let out = prior(hiddenStates: io["hidden_states"]!, timestep: 500, projEmbedding: io["proj_embedding"]!,
                        encoderHiddenStates: io["encoder_hidden_states"]!, textMask: mask)
        assertClose(out, io["out_t500"]!, "prior out_t500")
    }

    func testCLIPText() throws {
        let (dir, io) = try folder("text_encoder")
        let model = try CLIPTextModelWithProjection(folder: dir, variant: "fp16")
        let t = io["input_ids"]!
        let (embeds, hidden) = model((0..<2).map { b in (0..<77).map { Int(t.data[b * 77 + $0]) } })
        assertClose(embeds, io["text_embeds"]!, "text_embeds")
        assertClose(hidden, io["last_hidden_state"]!, "last_hidden_state")
    }

    func testCLIPVision() throws {
        let (dir, io) = try folder("image_encoder")
        let model = try CLIPVisionModelWithProjection(folder: dir, variant: "fp16")
        assertClose(model(io["pixel_values"]!), io["image_embeds"]!, "image_embeds")
    }

    func checkDepth(_ name: String) throws {
        let (dir, io) = try folder(name)
        let model = try loadDepthEstimationModel(folder: dir, variant: "fp16")
        assertClose(model(io["pixel_values"]!), io["predicted_depth"]!, "\(name) predicted_depth")
    }

    func testDPTLarge() throws { try checkDepth("dpt_large") }
    func testDepthAnythingV2Small() throws { try checkDepth("depth_anything_v2_small") }
}
