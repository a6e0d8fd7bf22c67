// ABI 1.1 against 1.0, both ways: a plugin compiled against the frozen 1.0 header runs in this host with the output
// of its 1.1 successor; a plugin of a later minor with grown structs loads; a 1.1 plugin handed a 1.0 host's model
// server table sees the 1.1 functions as absent (not as whatever bytes follow the table).
import Foundation
import ImageIO
import ImageProcessing
import KandinskyPluginABI
import ModelServer
import PluginABIRules
import PluginHost
import XCTest

/// The model server table of a host of an older minor: the prefix of ours that minor defined, followed by garbage
/// where the later functions would be.
func olderTable(size tableSize: UInt32) -> UnsafeMutableRawPointer {
    let size = MemoryLayout<kd_model_server_t>.size
    let table = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<kd_model_server_t>.alignment)
    table.initializeMemory(as: UInt8.self, repeating: 0xAB, count: size)
    table.copyMemory(from: ServerABI.table, byteCount: Int(tableSize))
    table.storeBytes(of: tableSize, as: UInt32.self)
    return table
}

/// A host struct of minor `minor` whose get_extension hands out `extension`'s table.
func olderHost(
    minor: UInt32, hostData: UnsafeMutableRawPointer?,
    extension: @escaping @convention(c) (UnsafePointer<kd_host_t>?, UnsafePointer<CChar>?) -> UnsafeRawPointer?
)
    -> UnsafePointer<kd_host_t>
{
    let h = UnsafeMutablePointer<kd_host_t>.allocate(capacity: 1)
    h.initialize(
        to: kd_host_t(
            struct_size: ABI10Size.host, abi: kd_version_t(major: 1, minor: minor, patch: 0),
            name: UnsafePointer(strdup("host-1.\(minor)")), version: UnsafePointer(strdup("1.\(minor)")),
            host_data: hostData, get_extension: `extension`))
    return UnsafePointer(h)
}

/// A host speaking ABI 1.0 (no host_data: 1.0 functions reach the process's server).
enum Host10 {
    nonisolated(unsafe) static let table = olderTable(size: ABI10Size.modelServer)
    static let host = olderHost(minor: 0, hostData: nil) { _, id in
        guard let id, String(cString: id) == KD_EXT_MODEL_SERVER else { return nil }
        return UnsafeRawPointer(Host10.table)
    }
}

/// A host speaking ABI 1.1: the table ends with inpaint_condition; load_model reaches the process's server.
enum Host11 {
    nonisolated(unsafe) static let table = olderTable(
        size: VersionedStruct.sizeThrough(\kd_model_server_t.inpaint_condition))
    static let host = olderHost(minor: 1, hostData: ServerABI.processHost.pointee.host_data) { _, id in
        guard let id, String(cString: id) == KD_EXT_MODEL_SERVER else { return nil }
        return UnsafeRawPointer(Host11.table)
    }
}

/// A host speaking ABI 1.2: the table ends with inpaint_composite (no depth_estimate).
enum Host12 {
    nonisolated(unsafe) static let table = olderTable(
        size: VersionedStruct.sizeThrough(\kd_model_server_t.inpaint_composite))
    static let host = olderHost(minor: 2, hostData: ServerABI.processHost.pointee.host_data) { _, id in
        guard let id, String(cString: id) == KD_EXT_MODEL_SERVER else { return nil }
        return UnsafeRawPointer(Host12.table)
    }
}

final class ABICompatibilityTests: XCTestCase {
    let outpaintParams = [
        "prompt": "a field", "border": "20", "seed": "3", "num_inference_steps": "3", "prior_num_inference_steps": "2",
        "guidance_scale": "4", "model_name": Product.model("pipe_inpaint"),
        "prior_model_name": Product.model("pipe_prior"),
    ]

    func run(_ registry: PluginRegistry, _ id: String, _ params: [String: String], inputs: [String: PixelImage]) throws
        -> PixelImage
    {
        let spec = try XCTUnwrap(registry.plugin(named: id), "\(id) not loaded: \(registry.warnings)")
        return try PluginRunner.run(
            RunRequest(plugin: spec, params: try spec.resolve(params), inputs: inputs), registry: registry)
    }

    func registry(
        loading source: String, include: String = Product.header,
        host: UnsafePointer<kd_host_t> = ServerABI.processHost,
        name: String
    ) throws -> PluginRegistry {
        let lib = try Product.compileC(source, to: try Product.tempDir(), name: name, include: include)
        let r = PluginRegistry(host: host)
        try r.load(library: lib)
        return r
    }

    func testPluginBuiltAgainstThe10HeaderRunsLikeIts11Successor() throws {
        try Product.requirePlugins()
        let picture = try ImageFiles.read(Product.input("picture.png"))
        // The 1.0 outpaint: 1.0 descriptor sizes, prior()/decoder(), set_timesteps, add_noise, its own mask code and
        // 1.0-sized denoise arguments. The 1.1 one: load_model, sampler_create, inpaint_condition.
        let old = try registry(
            loading: Product.header10 + "/outpaint_1_0.c", include: Product.header10,
            name: "libkandinsky_plugin_outpaint10.so")
        let new = try registry(
            loading: Product.repo + "/Plugins/Outpaint/outpaint.c", name: "libkandinsky_plugin_outpaint11.so")
        XCTAssertEqual(
            try XCTUnwrap(old.plugin(named: "outpaint")).params.count + 4,
            try XCTUnwrap(new.plugin(named: "outpaint")).params.count,
            "1.1 adds the scheduler parameter, 1.2 keep_unmasked and mask_blur, 1.5 num_images")
        let before = try run(old, "outpaint", outpaintParams, inputs: ["image": picture])
        // keep_unmasked off: the 1.0 plugin passed the whole canvas through the MoVQ decoder.
        let after = try run(
            new, "outpaint", outpaintParams.merging(["keep_unmasked": "false"]) { $1 }, inputs: ["image": picture])
        XCTAssertEqual([before.width, before.height], [120, 100])
        let differing = zip(before.pixels, after.pixels).filter { $0 != $1 }.count
        XCTAssertEqual(
            differing, 0,
            "the 1.0 plugin's output differs from the 1.1 plugin's in \(differing) of \(after.pixels.count) values")
    }

    func testPluginOfALaterMinorWithGrownStructsLoads() throws {
        let r = try registry(
            loading: Product.repo + "/Tests/ProductTests/Plugins/future_minor.c",
            name: "libkandinsky_plugin_future_minor.so")
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        let spec = try XCTUnwrap(r.plugin(named: "future-minor"))
        XCTAssertEqual(spec.params.map(\.key), ["alpha", "beta", "gamma"])
        XCTAssertEqual(spec.params.map(\.defaultText), ["7", "0.5", "word"])
        XCTAssertEqual(spec.inputs.map(\.key), ["image", "depth"])
        XCTAssertEqual(spec.inputs.map(\.kind), [.image, .depth])
        let out = try run(r, "future-minor", ["alpha": "42"], inputs: [:])
        XCTAssertEqual(out.pixels, [42], "the plugin read the host's values by their stated size")
    }

    /// ABI 1.4: a 16-bit grey file reaches an input declared KD_INPUT_WIDE with its 16 bits, and any other input
    /// with 8 (the high bytes), as before.
    func testSixteenBitSamplesReachOnlyInputsDeclaredWide() throws {
        let r = try registry(
            loading: Product.repo + "/Tests/ProductTests/Plugins/wide_probe.c", name: "libkandinsky_plugin_wide.so")
        XCTAssertEqual(try XCTUnwrap(r.plugin(named: "wide-probe")).inputs.map(\.wide), [true, false])
        let depth = try ImageFiles.read(Product.input("depth16.png"))
        let samples = try XCTUnwrap(depth.wideSamples, "depth16.png read without its 16 bits")
        let wide = try run(r, "wide-probe", [:], inputs: ["wide": depth])
        XCTAssertEqual([wide.width, wide.height], [depth.width * 2, depth.height], "the wide input's row bytes")
        let littleEndian = samples.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let wrong = zip(wide.pixels, littleEndian).filter { $0 != $1 }.count
        XCTAssertEqual(wrong, 0, "\(wrong) of \(littleEndian.count) bytes of the 16-bit samples differ")
        let narrow = try run(r, "wide-probe", [:], inputs: ["narrow": depth])
        XCTAssertEqual([narrow.width, narrow.height], [depth.width, depth.height], "the narrow input's row bytes")
        XCTAssertEqual(narrow.pixels, depth.pixels, "the narrow input is not the 16-bit file's high bytes")
    }

    /// A second copy of the shipped library of `plugin`, loaded by a registry on `host`: dlopen gives the copy its
    /// own globals, bound to that host.
    func shippedCopy(_ plugin: String, on host: UnsafePointer<kd_host_t>) throws -> PluginRegistry {
        let name = "libkandinsky_plugin_\(plugin).so"
        let copy = try Product.tempDir() + "/" + name
        try FileManager.default.copyItem(atPath: Product.buildDir + "/" + name, toPath: copy)
        let registry = PluginRegistry(host: host)
        try registry.load(library: copy)
        return registry
    }

    func testSwiftPluginOnA10HostSeesThe11FunctionsAbsent() throws {
        try Product.requirePlugins()
        let host10 = try shippedCopy("text2img", on: Host10.host)
        var params = [
            "prompt": "a red cat", "seed": "5", "num_inference_steps": "3", "prior_num_inference_steps": "2",
            "width": "64",
            "height": "64", "model_name": Product.model("pipe_decoder"),
            "prior_model_name": Product.model("pipe_prior"),
        ]
        let on10 = try run(host10, "text2img", params, inputs: [:])
        let on11 = try run(Product.registry, "text2img", params, inputs: [:])
        XCTAssertEqual(on10.pixels, on11.pixels, "text2img through the 1.0 table differs from the 1.1 run")
        params["scheduler"] = "unipc"
        XCTAssertThrowsError(try run(host10, "text2img", params, inputs: [:])) { e in
            XCTAssertTrue("\(e)".contains("scheduler unipc needs a host whose model server speaks ABI 1.1"), "\(e)")
        }
        // The C outpaint needs 1.1's inpaint_condition and declines a 1.0 host instead of calling garbage.
        let lib = try Product.compileC(
            Product.repo + "/Plugins/Outpaint/outpaint.c", to: try Product.tempDir(),
            name: "libkandinsky_plugin_outpaint_on_10.so")
        let declined = PluginRegistry(host: Host10.host)
        declined.load(directories: [(lib as NSString).deletingLastPathComponent])
        XCTAssertTrue(declined.plugins.isEmpty)
        XCTAssertTrue(declined.warnings.contains { $0.contains("declined to initialise") }, "\(declined.warnings)")
    }

    func testInpaintOnA11HostRefusesTheMaskRulesItLacks() throws {
        try Product.requirePlugins()
        let host11 = try shippedCopy("inpaint", on: Host11.host)
        let params = [
            "prompt": "a hat", "seed": "5", "num_inference_steps": "2", "prior_num_inference_steps": "2",
            "model_name": Product.model("pipe_inpaint"), "prior_model_name": Product.model("pipe_prior"),
        ]
        let inputs = [
            "image": try ImageFiles.read(Product.input("picture.png")),
            "mask": try ImageFiles.read(Product.input("mask.png")),
        ]
        XCTAssertThrowsError(try run(host11, "inpaint", params, inputs: inputs)) { e in
            XCTAssertTrue("\(e)".contains("needs a host whose model server speaks ABI 1.2"), "\(e)")
        }
    }

    /// Depth from a picture needs 1.3's depth_estimate; a depth map alone still runs on a 1.2 host.
    func testControlNetFromAPhotoOnA12HostRefusesTheDepthItLacks() throws {
        try Product.requirePlugins()
        let host12 = try shippedCopy("controlnet_depth", on: Host12.host)
        let params = [
            "prompt": "a robot", "seed": "1", "num_inference_steps": "2", "prior_num_inference_steps": "2",
            "model_name": Product.model("pipe_controlnet"), "prior_model_name": Product.model("pipe_prior"),
            "depth_model_name": Product.model("depth_anything"),
        ]
        let photo = ["image": try ImageFiles.read(Product.input("picture.png"))]
        XCTAssertThrowsError(try run(host12, "controlnet-depth", params, inputs: photo)) { e in
            XCTAssertTrue("\(e)".contains("needs a host whose model server speaks ABI 1.3"), "\(e)")
        }
        let depth = ["depth": try ImageFiles.read(Product.input("depth.png"))]
        XCTAssertNoThrow(try run(host12, "controlnet-depth", params, inputs: depth))
    }
}
