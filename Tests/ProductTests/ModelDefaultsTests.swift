// Per-model defaults (issue 6): with no width/height the output has the model's natural size, read from
// kandinsky_defaults.json beside the weights; a folder without one (the kandinsky-community layout) gets 768x768.
import Foundation
import KandinskyPluginABI
import ModelServer
import XCTest

final class ModelDefaultsTests: XCTestCase {
    func testNoSizeGivesTheModelsNaturalSize() throws {
        try Product.requirePlugins()
        let dir = try Product.tempDir()
        let r = try Product.cli(["run", "text2img", "--prompt", "a cat", "--seed", "1", "--num-inference-steps", "2",
                                 "--prior-num-inference-steps", "2", "--quiet", "-o", "out.png"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("(64x64)"), r.stderr)
    }

    func testCommunityLayoutDefaultsTo768() throws {
        // A decoder folder laid out like kandinsky-community/kandinsky-2-2-decoder: no kandinsky_defaults.json.
        let dir = try Product.tempDir() + "/kandinsky-2-2-decoder"
        try FileManager.default.copyItem(atPath: Product.model("pipe_decoder"), toPath: dir)
        try FileManager.default.removeItem(atPath: dir + "/kandinsky_defaults.json")
        let server = ModelServer(defaultPrior: Product.model("pipe_prior"), defaultDecoders: [:])
        let d = try server.decoder(dir)
        XCTAssertEqual([d.defaults.width, d.defaults.height], [768, 768])
        // The same through the C table a plugin reads.
        _ = Product.registry
        let t = ServerABI.table.pointee
        var err = [CChar](repeating: 0, count: 256)
        let handle = try XCTUnwrap(t.decoder(dir, "text2img", &err, err.count), String(cString: err))
        var info = kd_decoder_info_t()
        info.struct_size = UInt32(MemoryLayout<kd_decoder_info_t>.size)
        XCTAssertEqual(t.decoder_info(handle, &info), Int32(KD_OK))
        XCTAssertEqual([info.default_width, info.default_height], [768, 768])
        let r = try Product.cli(["inspect", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("defaults: 768x768 (built-in)"), r.stdout)
        let tiny = try Product.cli(["inspect", Product.model("pipe_decoder")])
        XCTAssertTrue(tiny.stdout.contains("defaults: 64x64 (kandinsky_defaults.json)"), tiny.stdout)
        XCTAssertTrue(tiny.stdout.contains("UNet2DConditionModel"), tiny.stdout)
    }

    func testBadDefaultsFileIsAnError() throws {
        let dir = try Product.tempDir() + "/decoder"
        try FileManager.default.copyItem(atPath: Product.model("pipe_decoder"), toPath: dir)
        try #"{"width": 64, "hieght": 64}"#.write(toFile: dir + "/kandinsky_defaults.json", atomically: true, encoding: .utf8)
        let server = ModelServer(defaultPrior: Product.model("pipe_prior"), defaultDecoders: [:])
        XCTAssertThrowsError(try server.decoder(dir)) { e in
            XCTAssertEqual("\(e)", "\(dir)/kandinsky_defaults.json: config value hieght = 64 is not supported by this engine")
        }
    }
}
