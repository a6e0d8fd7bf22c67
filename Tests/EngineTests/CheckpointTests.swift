// Checkpoint loading: dtypes, shards, variants, and a clear error for every kind of bad file or config.
import Checkpoint
import Foundation
import Networks
import TensorCore
import XCTest

/// Writes a safetensors file from a raw header object and data bytes, so tests can build malformed files.
func writeSafetensors(_ path: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) throws {
    var bytes: [UInt8] = []
    let h = Array(header.utf8)
    var len = (declaredLength ?? UInt64(h.count)).littleEndian
    withUnsafeBytes(of: &len) { bytes += $0 }
    bytes += h + data
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

final class CheckpointTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func file(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    func expectHeaderError(
        _ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil, containing fragment: String,
        line: UInt = #line
    ) throws {
        let p = file("bad.safetensors")
        try writeSafetensors(p, header: header, data: data, declaredLength: declaredLength)
        XCTAssertThrowsError(try SafetensorsFile(path: p), line: line) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.hasPrefix(p + ": "), "message should start with the file name: \(msg)", line: line)
            XCTAssertTrue(msg.contains(fragment), "'\(msg)' should mention '\(fragment)'", line: line)
        }
    }

    func testDTypesWidenToFloat32() throws {
        let f = try SafetensorsFile(path: Fixtures.path("dtypes.safetensors"))
        let expected = try Fixtures.tensors("dtypes_expected")
        for key in ["f32", "f16", "bf16"] {
            assertClose(f.load(f.entries[key]!), expected[key]!, "\(key) widened", relTol: 0)
        }
    }

    func testMalformedHeadersAreRejectedWithTheReason() throws {
        let p = file("short.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafetensorsFile(path: p)) {
            XCTAssertTrue("\($0)".contains("shorter than the 8-byte header length"))
        }
        try expectHeaderError("{}", declaredLength: 1000, containing: "runs past the end")
        try expectHeaderError("{}", declaredLength: 1 << 40, containing: "exceeds")
        try expectHeaderError("{\"a\": ", containing: "not well-formed JSON")
        try expectHeaderError("[1, 2]", containing: "not a JSON object")
        try expectHeaderError(
            #"{"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0],
            containing: "unknown dtype 'Q7'")
        try expectHeaderError(
            #"{"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}"#, data: Array(repeating: 0, count: 8),
            containing: "tensor 'a' has dtype I64")
        try expectHeaderError(
            #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: Array(repeating: 0, count: 8),
            containing: "needs 12 bytes but data_offsets span 8")
        try expectHeaderError(
            #"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, data: Array(repeating: 0, count: 8),
            containing: "lie outside the 8-byte data section")
        try expectHeaderError(
            #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
            data: Array(repeating: 0, count: 12), containing: "overlap")
        try expectHeaderError(
            #"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0],
            containing: "invalid shape")
        try expectHeaderError(
            #"{"a": {"dtype": "F32", "shape": [1]}}"#, data: [0, 0, 0, 0], containing: "invalid data_offsets")
    }

    func testEightBitDataReadsButIsNoWeight() throws {
        let p = file("diffusion_pytorch_model.safetensors")
        try writeSafetensors(
            p, header: #"{"a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}"#, data: [0, 128, 255])
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(f.load(f.entries["a"]!).array, [0, 128, 255])
        XCTAssertThrowsError(try WeightStore(folder: dir).tensor("a", shape: [3])) { e in
            XCTAssertEqual("\(e)", "\(p): tensor 'a' has dtype U8; only F32, F16 and BF16 weights are supported")
        }
    }

    func testTruncatedCheckpointIsNamed() throws {
        let src = Fixtures.model("prior_1l") + "/diffusion_pytorch_model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: src))
        let p = file("diffusion_pytorch_model.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafetensorsFile(path: p)) { e in
            XCTAssertTrue("\(e)".hasPrefix(p) && "\(e)".contains("truncated?"), "\(e)")
        }
    }

    func testFoldersWithoutSafetensors() throws {
        try Data([0x80, 0x02]).write(to: URL(fileURLWithPath: file("diffusion_pytorch_model.bin")))
        XCTAssertThrowsError(try WeightStore(folder: dir)) { e in
            XCTAssertEqual(e as? CheckpointError, .pickleOnly(folder: dir))
            XCTAssertTrue("\(e)".contains("never unpickles"))
        }
        try FileManager.default.removeItem(atPath: file("diffusion_pytorch_model.bin"))
        XCTAssertThrowsError(try WeightStore(folder: dir)) {
            XCTAssertEqual($0 as? CheckpointError, .noWeights(folder: dir))
        }
        XCTAssertThrowsError(try WeightStore(folder: dir + "/missing")) {
            XCTAssertEqual($0 as? CheckpointError, .fileMissing(path: dir + "/missing"))
        }
    }

    func testShardedCheckpointLoadsLikeTheSingleFile() throws {
        let io = try Fixtures.tensors("prior_3l")
        let prior = try PriorTransformer(folder: Fixtures.model("prior_3l_sharded"))
        let mask = [
            Array(repeating: true, count: 5) + Array(repeating: false, count: 72), Array(repeating: true, count: 77),
        ]
        let out = prior(
            hiddenStates: io["hidden_states"]!, timestep: 42, projEmbedding: io["proj_embedding"]!,
            encoderHiddenStates: io["encoder_hidden_states"]!, textMask: mask)
        assertClose(out, io["out_t42"]!, "sharded prior_3l out_t42")
    }

    /// A shard map is a boundary: names that leave the model folder (.., absolute, or a symlink out) are refused
    /// with the index file and the name, before anything outside is opened; a Hugging Face snapshot's links into the
    /// model's own blobs/ folder are followed.
    func testShardMapsStayInsideTheModelFolder() throws {
        let outside = dir + "/outside.safetensors"
        try writeSafetensors(
            outside, header: #"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
            data: [0, 0, 0, 0])
        let model = dir + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: model + "/linked.safetensors", withDestinationPath: outside)
        for shard in ["../outside.safetensors", outside, "linked.safetensors", "a//b.safetensors"] {
            let index = model + "/diffusion_pytorch_model.safetensors.index.json"
            let json = try JSONSerialization.data(withJSONObject: ["weight_map": ["x": shard]])
            try json.write(to: URL(fileURLWithPath: index))
            XCTAssertThrowsError(try WeightStore(folder: model), "shard \(shard)") { error in
                XCTAssertEqual(
                    error as? CheckpointError,
                    .badConfig(
                        path: index, reason: "weight_map names '\(shard)', which is not a file inside the model folder"),
                    "shard \(shard)")
            }
        }
        // A weight file found by listing the folder is held to the same rule.
        try FileManager.default.removeItem(atPath: model + "/diffusion_pytorch_model.safetensors.index.json")
        try FileManager.default.removeItem(atPath: model + "/linked.safetensors")
        try FileManager.default.createSymbolicLink(
            atPath: model + "/diffusion_pytorch_model.safetensors",
            withDestinationPath: outside)
        XCTAssertThrowsError(try WeightStore(folder: model), "a weight file linked outside") { error in
            XCTAssertEqual(
                error as? CheckpointError,
                .badConfig(
                    path: model + "/diffusion_pytorch_model.safetensors",
                    reason: "a link that leads outside the model folder"))
        }
        let snapshot = dir + "/models--org--name/snapshots/abc/unet"
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: dir + "/models--org--name/blobs", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: outside, toPath: dir + "/models--org--name/blobs/0123")
        try FileManager.default.createSymbolicLink(
            atPath: snapshot + "/shard.safetensors",
            withDestinationPath: "../../../blobs/0123")
        try JSONSerialization.data(withJSONObject: ["weight_map": ["x": "shard.safetensors"]])
            .write(to: URL(fileURLWithPath: snapshot + "/diffusion_pytorch_model.safetensors.index.json"))
        XCTAssertNotNil(try WeightStore(folder: snapshot).entry("x"), "a snapshot's shard linked into blobs/")
    }

    /// A vision tower whose patch is larger than its image would have no patches: refused where the config is read.
    func testVisionPatchLargerThanTheImageIsRefused() {
        let config = ConfigReader(path: "image_encoder/config.json", values: ["image_size": 224, "patch_size": 300])
        XCTAssertThrowsError(try CLIPConfig(config, vision: true)) { error in
            XCTAssertEqual(error as? CheckpointError, .badConfig(
                path: "image_encoder/config.json", reason: "patch_size = 300 is outside the allowed range [1, 224]"))
        }
    }

    func testVariantSelection() throws {
        // Only the fp16 file exists: used without asking; asking for a variant that is absent falls back likewise.
        XCTAssertNoThrow(try WeightStore(folder: Fixtures.model("unet_fp16")))
        let store = try WeightStore(folder: Fixtures.model("unet_fp16"), variant: "fp16")
        XCTAssertEqual(store.entry("conv_in.weight")?.dtype, .f16)
    }

    func testStandardWeightNamesWinOverOtherSafetensors() throws {
        // A folder with extra safetensors beside the weights (reference data, say) still loads its weights.
        try FileManager.default.copyItem(
            atPath: Fixtures.model("prior_1l") + "/diffusion_pytorch_model.safetensors",
            toPath: file("diffusion_pytorch_model.safetensors"))
        try writeSafetensors(
            file("aaa_reference.safetensors"),
            header: #"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
        XCTAssertNotNil(try WeightStore(folder: dir).entry("proj_in.weight"))
    }

    func testMismatchedWeightsNameTheTensorAndBothShapes() throws {
        let cfg = try UNetConfig(ConfigReader(path: Fixtures.model("unet_2lvl") + "/config.json"))
        XCTAssertThrowsError(
            try UNet2DConditionModel(config: cfg, weights: WeightStore(folder: Fixtures.model("unet_inpaint")))
        ) { e in
            XCTAssertEqual(
                e as? CheckpointError,
                .shapeMismatch(
                    key: "conv_in.weight", expected: [32, 4, 3, 3], found: [32, 9, 3, 3],
                    component: Fixtures.model("unet_inpaint")))
        }
        // Fewer layers in the config than in the weights: the extra tensors are reported, not ignored.
        var prior = try PriorConfig(ConfigReader(path: Fixtures.model("prior_3l") + "/config.json"))
        prior.layers = 2
        XCTAssertThrowsError(
            try PriorTransformer(config: prior, weights: WeightStore(folder: Fixtures.model("prior_3l")))
        ) { e in
            guard case .unexpectedTensors(let keys, _)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertTrue(keys.allSatisfy { $0.hasPrefix("transformer_blocks.2.") }, "\(keys)")
        }
        // More layers than the weights hold: the first missing key is named.
        prior.layers = 4
        XCTAssertThrowsError(
            try PriorTransformer(config: prior, weights: WeightStore(folder: Fixtures.model("prior_3l")))
        ) { e in
            XCTAssertEqual(
                "\(e)",
                "\(Fixtures.model("prior_3l")): tensor 'transformer_blocks.3.norm1.weight' is missing from the checkpoint"
            )
        }
    }

    func testUnsupportedConfigValuesAreErrors() throws {
        let original =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Fixtures.model("unet_2lvl") + "/config.json")))
            as! [String: Any]
        for (key, value, shown) in [
            ("attention_type", "gated" as Any, "gated"), ("time_embedding_type", "fourier", "fourier"),
            ("some_future_option", 3, "3"), ("addition_embed_type", "text", "text"),
        ] {
            var cfg = original
            cfg[key] = value
            let p = file("config.json")
            try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try UNetConfig(ConfigReader(path: p))) { e in
                XCTAssertEqual("\(e)", "\(p): config value \(key) = \(shown) is not supported by this engine")
            }
        }
    }
}
