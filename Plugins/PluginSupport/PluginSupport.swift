// Helpers every Swift plugin links (statically, one copy per plugin library). Only C types cross into the host;
// the one global here (the library's own plugin list) is meant to be per library.
import Foundation
import KandinskyPluginABI
import PluginABIRules

// MARK: - Declaring plugins

public struct ParamDecl {
    public var key: String, help: String, type: kd_param_type, flags: UInt32 = 0
    public var min: Double = 0, max: Double = 0, defaultValue: String?
    /// - type: KD_PARAM_INT ...
    public init(
        _ key: String, _ type: Int, help: String, min: Double = 0, max: Double = 0, default d: String? = nil,
        flags: UInt32 = 0
    ) {
        self.key = key
        self.type = kd_param_type(type)
        self.help = help
        self.min = min
        self.max = max
        defaultValue = d
        self.flags = flags
    }
}

public struct InputDecl {
    public var key: String, kind: kd_input_kind, flags: UInt32, help: String
    /// - kind: KD_INPUT_IMAGE ...
    public init(_ key: String, _ kind: Int, help: String, flags: UInt32 = 0) {
        self.key = key
        self.kind = kd_input_kind(kind)
        self.flags = flags
        self.help = help
    }
}

/// The parameters every generating variant shares, with the seed's defaults.
public enum CommonParams {
    public static let prompt = ParamDecl("prompt", KD_PARAM_STRING, help: "what the image should show")
    public static let negativePrompt = ParamDecl(
        "negative_prompt", KD_PARAM_STRING,
        help:
            "what to steer away from; absent = the zero-image embedding, \"\" = the prior's embedding of the empty "
            + "text (as diffusers)",
        flags: UInt32(KD_PARAM_OPTIONAL))
    public static let priorSteps = ParamDecl(
        "prior_num_inference_steps", KD_PARAM_INT, help: "prior denoising steps", min: 2, max: 1000, default: "25")
    public static let priorGuidance = ParamDecl(
        "prior_guidance_scale", KD_PARAM_FLOAT, help: "prior classifier-free guidance (on above 1)",
        min: 0, max: 100, default: "4.0")
    public static let steps = ParamDecl(
        "num_inference_steps", KD_PARAM_INT, help: "decoder denoising steps", min: 1, max: 1000, default: "100")
    public static let guidance = ParamDecl(
        "guidance_scale", KD_PARAM_FLOAT, help: "decoder classifier-free guidance (on above 1)",
        min: 0, max: 100, default: "1.0")
    public static let seed = ParamDecl(
        "seed", KD_PARAM_SEED, help: "random seed; -1 picks one (printed and recorded)", min: -1,
        max: 9_007_199_254_740_991,
        default: "-1")
    public static let width = ParamDecl(
        "width", KD_PARAM_INT,
        help: "output width in pixels (rounded up to a multiple of 64); default: the model's natural size",
        min: 64, max: 4096, flags: UInt32(KD_PARAM_OPTIONAL))
    public static let height = ParamDecl(
        "height", KD_PARAM_INT,
        help: "output height in pixels (rounded up to a multiple of 64); default: the model's natural size",
        min: 64, max: 4096, flags: UInt32(KD_PARAM_OPTIONAL))
    public static let strength = ParamDecl(
        "strength", KD_PARAM_FLOAT, help: "how far to move from the init image (0 keeps it, 1 ignores it)",
        min: 0, max: 1, default: "0.3")
    public static let model = ParamDecl(
        "model_name", KD_PARAM_STRING, help: "decoder model: folder or hub id in the local Hugging Face cache",
        flags: UInt32(KD_PARAM_OPTIONAL | KD_PARAM_MODEL))
    public static let priorModel = ParamDecl(
        "prior_model_name", KD_PARAM_STRING, help: "prior model: folder or hub id in the local Hugging Face cache",
        flags: UInt32(KD_PARAM_OPTIONAL | KD_PARAM_MODEL))
    public static let scheduler = ParamDecl(
        "scheduler", KD_PARAM_STRING,
        help: "decoder sampler: ddpm (as shipped), ddim, dpmsolver++ or unipc (good images in 20-30 steps); "
            + "Euler-family samplers are not offered: the Kandinsky pipelines never call scale_model_input",
        default: "ddpm")
    public static let keepUnmasked = ParamDecl(
        "keep_unmasked", KD_PARAM_BOOL,
        help: "pixels outside the mask stay the input's, byte for byte, with a feathered seam (false = diffusers' "
            + "output, where the whole picture passes through the MoVQ decoder)",
        default: "true")
    public static let maskBlur = ParamDecl(
        "mask_blur", KD_PARAM_INT,
        help: "keep_unmasked: the seam's width in pixels, inside the repainted region (0 = a hard edge)",
        min: 0, max: 256, default: "4")
    public static let depthModel = ParamDecl(
        "depth_model_name", KD_PARAM_STRING,
        help: "depth estimator for a photo: a transformers DPT or Depth Anything folder or hub id in the local "
            + "Hugging Face cache (Ikomia uses Intel/dpt-large); default: the embedded set's",
        flags: UInt32(KD_PARAM_OPTIONAL | KD_PARAM_MODEL))
    /// The host reads this key (ABI 1.5 output_count): image k of the run is made with seed + k.
    public static let numImages = ParamDecl(
        "num_images", KD_PARAM_INT,
        help: "images to make; image k uses seed + k (each equals a run of that seed alone), denoised as one batch "
            + "when memory allows",
        min: 1, max: 64, default: "1")
    public static let generation = [
        prompt, negativePrompt, priorSteps, priorGuidance, steps, guidance, scheduler, seed, numImages, width,
        height, model, priorModel,
    ]
}

public struct PluginFailure: Error {
    public let status: kd_status
    public let message: String
    public init(_ message: String, status: Int32 = Int32(KD_ERR_INVALID_ARGUMENT)) {
        self.message = message
        self.status = status
    }
}

public struct PluginDefinition {
    public let descriptor: UnsafePointer<kd_plugin_desc_t>
    public let run: (Request) throws -> Void

    public init(
        id: String, name: String, version: String = "1.0.0", description: String, aliases: [String] = [],
        inputs: [InputDecl],
        params: [ParamDecl], run: @escaping (Request) throws -> Void
    ) {
        func c(_ s: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(s)!) }
        let ins = UnsafeMutablePointer<kd_input_desc_t>.allocate(capacity: max(inputs.count, 1))
        for (i, d) in inputs.enumerated() {
            ins[i] = kd_input_desc_t(
                struct_size: UInt32(MemoryLayout<kd_input_desc_t>.size), key: c(d.key), kind: d.kind, flags: d.flags,
                help: c(d.help))
        }
        let ps = UnsafeMutablePointer<kd_param_desc_t>.allocate(capacity: max(params.count, 1))
        for (i, p) in params.enumerated() {
            ps[i] = kd_param_desc_t(
                struct_size: UInt32(MemoryLayout<kd_param_desc_t>.size), key: c(p.key), help: c(p.help), type: p.type,
                flags: p.flags,
                min_value: p.min, max_value: p.max, default_value: p.defaultValue.map(c))
        }
        let al = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(aliases.count, 1))
        for (i, a) in aliases.enumerated() { al[i] = c(a) }
        let d = UnsafeMutablePointer<kd_plugin_desc_t>.allocate(capacity: 1)
        d.initialize(
            to: kd_plugin_desc_t(
                struct_size: UInt32(MemoryLayout<kd_plugin_desc_t>.size), id: c(id), name: c(name), version: c(version),
                description: c(description), aliases: UnsafePointer(al), alias_count: UInt32(aliases.count),
                inputs: UnsafePointer(ins), input_count: UInt32(inputs.count), params: UnsafePointer(ps),
                param_count: UInt32(params.count)))
        descriptor = UnsafePointer(d)
        self.run = run
    }
}

/// This library's plugins and the host's server table, set once by `makeEntry` and `init`.
nonisolated(unsafe) var libraryPlugins: [PluginDefinition] = []
nonisolated(unsafe) var hostServer: UnsafePointer<kd_model_server_t>?

/// The entry table for a library holding `plugins`. Call from the library's `kandinsky_plugin_entry`.
public func makeEntry(_ plugins: @autoclosure () -> [PluginDefinition]) -> UnsafePointer<kd_plugin_entry_t> {
    if let e = entryTable { return e }
    libraryPlugins = plugins()
    let e = UnsafeMutablePointer<kd_plugin_entry_t>.allocate(capacity: 1)
    e.initialize(
        to: kd_plugin_entry_t(
            struct_size: VersionedStruct.size(of: kd_plugin_entry_t.self),
            abi: kd_version_t(major: KD_ABI_MAJOR, minor: KD_ABI_MINOR, patch: 0),
            init: { host in
                guard let host, host.pointee.struct_size >= ABI10Size.host, let get = host.pointee.get_extension,
                    let ext = get(host, KD_EXT_MODEL_SERVER)
                else { return false }
                // A copy under the size rules: functions a 1.0 host's table lacks read as nil.
                let table = ext.assumingMemoryBound(to: kd_model_server_t.self)
                guard
                    let server: kd_model_server_t = VersionedStruct.read(
                        table, minimum: ABI10Size.modelServer)
                else { return false }
                let copy = UnsafeMutablePointer<kd_model_server_t>.allocate(capacity: 1)
                copy.initialize(to: server)
                hostServer = UnsafePointer(copy)
                return true
            },
            plugin_count: { UInt32(libraryPlugins.count) },
            plugin_descriptor: { i in Int(i) < libraryPlugins.count ? libraryPlugins[Int(i)].descriptor : nil },
            run: { i, ctx in
                guard let ctx, Int(i) < libraryPlugins.count, let server = hostServer else {
                    return Int32(KD_ERR_INVALID_ARGUMENT)
                }
                let req = Request(ctx: ctx, server: server)
                do {
                    try libraryPlugins[Int(i)].run(req)
                    return Int32(KD_OK)
                } catch let f as PluginFailure {
                    if f.status != KD_CANCELLED, !f.message.isEmpty { req.setError(f.message) }
                    return f.status
                } catch {
                    req.setError("\(error)")
                    return Int32(KD_ERR_FAILED)
                }
            }))
    entryTable = UnsafePointer(e)
    return UnsafePointer(e)
}
nonisolated(unsafe) private var entryTable: UnsafePointer<kd_plugin_entry_t>?

// MARK: - One request

/// A tensor owned by the plugin, released with the handle.
public final class TensorHandle {
    public let raw: OpaquePointer
    let server: UnsafePointer<kd_model_server_t>
    /// false for a tensor the server lends during a callback.
    let owned: Bool
    init(_ raw: OpaquePointer, _ server: UnsafePointer<kd_model_server_t>, owned: Bool = true) {
        self.raw = raw
        self.server = server
        self.owned = owned
    }
    deinit { if owned { server.pointee.tensor_release(raw) } }
    public var data: UnsafeMutablePointer<Float> { server.pointee.tensor_data(raw)! }
    public var shape: [Int] {
        (0..<Int(server.pointee.tensor_rank(raw))).map { Int(server.pointee.tensor_dim(raw, UInt32($0))) }
    }
    public var count: Int { shape.reduce(1, *) }
}

/// A generator owned by the plugin, released with the handle.
public final class GeneratorHandle {
    public let raw: OpaquePointer
    let server: UnsafePointer<kd_model_server_t>
    init(_ raw: OpaquePointer, _ server: UnsafePointer<kd_model_server_t>) {
        self.raw = raw
        self.server = server
    }
    deinit { server.pointee.generator_release(raw) }
}

/// One run's sampler (ABI 1.1's kd_sampler_t), released with the handle.
public final class SamplerHandle {
    public let raw: OpaquePointer
    /// The timesteps the run steps through, first step first.
    public let timesteps: [Int64]
    let server: UnsafePointer<kd_model_server_t>
    init(_ raw: OpaquePointer, timesteps: [Int64], _ server: UnsafePointer<kd_model_server_t>) {
        self.raw = raw
        self.timesteps = timesteps
        self.server = server
    }
    deinit { server.pointee.sampler_release(raw) }
}

/// An 8-bit picture owned by the plugin (zero-filled), seen by the server as a kd_image_t; freed with the object.
public final class OwnedImage {
    public let image: UnsafeMutablePointer<kd_image_t>

    public init(width: Int, height: Int, channels: Int) {
        image = .allocate(capacity: 1)
        image.initialize(
            to: kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: Int32(width), height: Int32(height),
                channels: Int32(channels), row_bytes: Int64(width * channels),
                data: .allocate(capacity: width * height * channels), bits_per_sample: 8))
        image.pointee.data.initialize(repeating: 0, count: width * height * channels)
    }

    deinit {
        image.pointee.data.deallocate()
        image.deallocate()
    }
}

/// The rectangle x..<x + width, y..<y + height of `image` as an image of its own, sharing its pixels (valid while
/// `image` is).
public func cropView(_ image: UnsafePointer<kd_image_t>, x: Int, y: Int, width: Int, height: Int) -> kd_image_t {
    var view = image.pointee
    view.struct_size = UInt32(MemoryLayout<kd_image_t>.size)
    view.data = image.pointee.data + y * Int(image.pointee.row_bytes) + x * Int(image.pointee.channels)
    view.width = Int32(width)
    view.height = Int32(height)
    return view
}

/// See Request.start(kind:).
public struct Start {
    public let decoder: OpaquePointer
    public let info: kd_decoder_info_t
    /// One per image of the run (seed + k).
    public let generators: [GeneratorHandle]
    /// [N, D]: image k's row from the prior run on generator k.
    public let embeds: TensorHandle, negative: TensorHandle
    public let height: Int, width: Int
    /// Latent side lengths for the output size.
    public var latentHeight: Int { height / Int(info.scale_factor) }
    public var latentWidth: Int { width / Int(info.scale_factor) }
}

public final class Request {
    public let ctx: UnsafePointer<kd_run_context_t>
    public let server: UnsafePointer<kd_model_server_t>
    public var s: kd_model_server_t { server.pointee }

    init(ctx: UnsafePointer<kd_run_context_t>, server: UnsafePointer<kd_model_server_t>) {
        self.ctx = ctx
        self.server = server
    }

    public func setError(_ m: String) { m.withCString { ctx.pointee.set_error?(ctx, $0) } }

    /// The value of `key`, walking the host's array by its elements' struct_size (KD_ARRAY_AT).
    func value(_ key: String) -> kd_value_t? {
        guard let params = ctx.pointee.params else { return nil }
        for i in 0..<Int(ctx.pointee.param_count) {
            guard
                let v: kd_value_t = VersionedStruct.element(
                    params, index: i, stride: params.pointee.struct_size,
                    minimum: ABI10Size.value)
            else { return nil }
            if let k = v.key, String(cString: k) == key, v.has_value { return v }
        }
        return nil
    }

    /// The given inputs as (key, image), read as `value` reads parameters.
    func namedInputs() -> [(String, UnsafePointer<kd_image_t>)] {
        guard let inputs = ctx.pointee.inputs else { return [] }
        return (0..<Int(ctx.pointee.input_count)).compactMap { i in
            guard
                let named: kd_named_image_t = VersionedStruct.element(
                    inputs, index: i, stride: inputs.pointee.struct_size,
                    minimum: ABI10Size.namedImage),
                let key = named.key, let image = named.image
            else { return nil }
            return (String(cString: key), image)
        }
    }

    /// A parameter the schema declares with a default: the host always fills it.
    public func declared<T>(_ key: String, _ read: (String) -> T?) throws -> T {
        guard let v = read(key) else {
            throw PluginFailure("parameter \(key) has no value (its declaration has a default)")
        }
        return v
    }

    /// Whether the host's model server table has `function` (ABI 1.1 functions are absent from a 1.0 host's).
    public func serverHas<F>(_ function: KeyPath<kd_model_server_t, F>) -> Bool {
        VersionedStruct.has(server.pointee.struct_size, function)
    }

    /// Refuses a host whose model server lacks `function`, new in ABI `minor` (1.1 or 1.2).
    func require<F>(_ function: KeyPath<kd_model_server_t, F>, minor: String, for what: String) throws {
        guard serverHas(function) else {
            throw PluginFailure(
                "\(what) needs a host whose model server speaks ABI \(minor); this one speaks an older 1.x",
                status: Int32(KD_ERR_UNSUPPORTED))
        }
    }

    func require11<F>(_ function: KeyPath<kd_model_server_t, F>, for what: String) throws {
        try require(function, minor: "1.1", for: what)
    }

    public func string(_ key: String) -> String? { value(key)?.string_value.map { String(cString: $0) } }
    public func int(_ key: String) -> Int? { value(key).map { Int($0.int_value) } }
    public func double(_ key: String) -> Double? { value(key)?.float_value }
    public func list(_ key: String) -> [Double]? {
        guard let v = value(key), let l = v.list_values else { return nil }
        return (0..<Int(v.list_count)).map { l[$0] }
    }

    public func input(_ key: String) -> UnsafePointer<kd_image_t>? { namedInputs().first { $0.0 == key }?.1 }

    /// Inputs named prefix1, prefix2, ... in numeric order.
    public func numberedInputs(_ prefix: String) -> [UnsafePointer<kd_image_t>] {
        let found = namedInputs().compactMap { key, image -> (Int, UnsafePointer<kd_image_t>)? in
            guard key.hasPrefix(prefix), let n = Int(key.dropFirst(prefix.count)) else { return nil }
            return (n, image)
        }
        return found.sorted { $0.0 < $1.0 }.map(\.1)
    }

    public func tensor(_ shape: [Int]) throws -> TensorHandle {
        let dims = shape.map(Int64.init)
        guard let t = dims.withUnsafeBufferPointer({ s.tensor_create($0.baseAddress, UInt32(dims.count)) }) else {
            throw PluginFailure("out of memory for a tensor of shape \(shape)", status: Int32(KD_ERR_OUT_OF_MEMORY))
        }
        return TensorHandle(t, server)
    }

    /// torch.randn(shape) from the run's generator.
    public func randn(_ shape: [Int], _ generator: GeneratorHandle) throws -> TensorHandle {
        let t = try tensor(shape)
        s.generator_randn(generator.raw, t.raw)
        return t
    }

    /// [N] + `shape`: row k is torch.randn([1] + shape) from generators[k], as in a run of image k alone.
    public func randn(eachOf shape: [Int], _ generators: [GeneratorHandle]) throws -> TensorHandle {
        try stack(try generators.map { try randn([1] + shape, $0) })
    }

    /// Tensors of one shape [1, ...] (or [B, ...]) stacked on the first axis.
    public func stack(_ parts: [TensorHandle]) throws -> TensorHandle {
        guard parts.count > 1 else { return parts[0] }
        var shape = parts[0].shape
        shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
        let out = try tensor(shape)
        var offset = 0
        for part in parts {
            (out.data + offset).update(from: part.data, count: part.count)
            offset += part.count
        }
        return out
    }

    /// Rows `range` of `x` along its first axis, as a tensor of their own.
    public func rows(_ x: TensorHandle, _ range: Range<Int>) throws -> TensorHandle {
        var shape = x.shape
        if range.count == shape[0] { return x }
        let rowCount = x.count / shape[0]
        shape[0] = range.count
        let out = try tensor(shape)
        out.data.update(from: x.data + range.lowerBound * rowCount, count: range.count * rowCount)
        return out
    }

    /// `x` [1, ...] repeated `times` times on the first axis.
    public func repeated(_ x: TensorHandle, times: Int) throws -> TensorHandle {
        try stack(Array(repeating: x, count: times))
    }

    public func adopt(_ raw: OpaquePointer?) throws -> TensorHandle {
        guard let raw else { throw PluginFailure("the model server returned no tensor", status: Int32(KD_ERR_FAILED)) }
        return TensorHandle(raw, server)
    }

    /// Maps a server status to an error; the server has already set the message where it had one.
    /// - reportedThroughContext: the call took this run's context and set its own message, which must stand.
    public func check(_ status: kd_status, _ what: String, reportedThroughContext: Bool = false) throws {
        if status == KD_OK { return }
        if status == KD_CANCELLED { throw PluginFailure("cancelled", status: status) }
        throw PluginFailure(reportedThroughContext ? "" : "\(what) failed", status: status)
    }

    // MARK: models

    /// A model of `kind` ("prior", "text2img", "inpaint", "controlnet"): through 1.1's load_model, which holds it
    /// for this run, or 1.0's prior()/decoder().
    func model(kind: String, reference: String?) throws -> OpaquePointer {
        if serverHas(\.load_model) {
            let loaded = withOptionalCString(reference) { ref in kind.withCString { s.load_model(ctx, $0, ref) } }
            guard let loaded else { throw PluginFailure("", status: Int32(KD_ERR_FAILED)) }
            return loaded
        }
        var err = [CChar](repeating: 0, count: 1024)
        let loaded = withOptionalCString(reference) { ref in
            kind == "prior" ? s.prior(ref, &err, err.count) : s.decoder(ref, kind, &err, err.count)
        }
        guard let loaded else { throw PluginFailure(String(cString: err), status: Int32(KD_ERR_FAILED)) }
        return loaded
    }

    public func prior() throws -> OpaquePointer { try model(kind: "prior", reference: string("prior_model_name")) }

    /// The decoder for `kind` ("text2img", "inpaint" or "controlnet"): model_name or the default of that kind, refused
    /// when its UNet is of another kind.
    public func decoder(kind: String) throws -> (OpaquePointer, kd_decoder_info_t) {
        let m = try model(kind: kind, reference: string("model_name"))
        var info = kd_decoder_info_t()
        info.struct_size = VersionedStruct.size(of: kd_decoder_info_t.self)
        try check(s.decoder_info(m, &info), "decoder_info")
        let lc = info.latent_channels
        let inC = info.unet_in_channels
        let problem: String?
        switch kind {
        case "inpaint":
            problem =
                !info.has_hint && inC == 2 * lc + 1
                ? nil
                : "model_name is not an inpainting decoder (its UNet takes \(inC) channels, inpainting needs "
                    + "\(2 * lc + 1))"
        case "controlnet":
            problem = info.has_hint ? nil : "model_name is not a ControlNet-depth decoder (no image_hint)"
        default:
            problem =
                !info.has_hint && inC == lc
                ? nil
                : "model_name is not a text-to-image decoder (its UNet takes \(inC) channels"
                    + "\(info.has_hint ? " and a depth hint" : ""))"
        }
        if let problem { throw PluginFailure(problem, status: Int32(KD_ERR_UNSUPPORTED)) }
        return (m, info)
    }

    /// What every prompt-driven variant starts with, in diffusers' order: the models, the run's generators, the
    /// prompt (and negative prompt) through the prior once per image on that image's generator, and the output size.
    public func start(kind: String) throws -> Start {
        let prior = try self.prior()
        let (decoder, info) = try self.decoder(kind: kind)
        let (h, w) = try outputSize(info)
        let generators = try self.generators()
        let perImage = try generators.map { g in
            try promptEmbeds(
                prior: prior, prompt: string("prompt") ?? "", negativePrompt: string("negative_prompt"),
                generator: g.raw)
        }
        return Start(
            decoder: decoder, info: info, generators: generators, embeds: try stack(perImage.map(\.0)),
            negative: try stack(perImage.map(\.1)), height: h, width: w)
    }

    /// The run's sampler: the `scheduler` parameter configured on `decoder`, over num_inference_steps cut to the
    /// last `strength` fraction (img2img). A 1.0 host offers only the model's own scheduler and the whole schedule.
    public func sampler(_ decoder: OpaquePointer, strength: Double = 1) throws -> SamplerHandle? {
        let steps = try declared("num_inference_steps", int)
        let scheduler = try declared("scheduler", string)
        guard serverHas(\.sampler_create) else {
            if strength != 1 { try require11(\.sampler_create, for: "strength below 1") }
            if scheduler != "ddpm" { try require11(\.sampler_create, for: "scheduler \(scheduler)") }
            return nil
        }
        var err = [CChar](repeating: 0, count: 1024)
        let raw: OpaquePointer? = scheduler.withCString { name in
            var args = kd_sampler_args_t(
                struct_size: VersionedStruct.size(of: kd_sampler_args_t.self), scheduler: name,
                steps: Int32(steps), strength: strength)
            return s.sampler_create(decoder, &args, &err, err.count)
        }
        guard let raw else { throw PluginFailure(String(cString: err)) }
        var count: UInt32 = 0
        var timesteps = [Int64](repeating: 0, count: steps)
        let status = s.sampler_timesteps(raw, &timesteps, UInt32(timesteps.count), &count)
        let handle = SamplerHandle(raw, timesteps: Array(timesteps.prefix(Int(count))), server)
        try check(status, "sampler_timesteps")
        guard count > 0 else {
            throw PluginFailure(
                "strength \(strength) x num_inference_steps \(steps) leaves no denoising step; raise either")
        }
        return handle
    }

    /// `sampler` where the run cannot do without one (a strength cut, sampler_add_noise).
    public func requiredSampler(_ decoder: OpaquePointer, strength: Double = 1, for what: String) throws
        -> SamplerHandle
    {
        guard let handle = try sampler(decoder, strength: strength) else {
            try require11(\.sampler_create, for: what)
            throw PluginFailure("no sampler", status: Int32(KD_ERR_FAILED))
        }
        return handle
    }

    /// The timesteps a run steps through: the sampler's, or (1.0 host) the model's whole schedule.
    public func timesteps(_ decoder: OpaquePointer, sampler: SamplerHandle?) throws -> [Int64] {
        if let sampler { return sampler.timesteps }
        let steps = try declared("num_inference_steps", int)
        var buf = [Int64](repeating: 0, count: steps)
        var n: UInt32 = 0
        try check(s.set_timesteps(decoder, Int32(steps), &buf, UInt32(buf.count), &n), "set_timesteps")
        return Array(buf.prefix(Int(n)))
    }

    /// img2img's start (diffusers prepare_latents): the init image's latents noised to the sampler's first timestep,
    /// [N, C, h, w] with image k's noise from generators[k].
    public func noisedInitLatents(
        _ decoder: OpaquePointer, image: UnsafePointer<kd_image_t>, width: Int, height: Int,
        sampler: SamplerHandle, generators: [GeneratorHandle]
    ) throws -> TensorHandle {
        let initLatents = try encode(decoder, try pictureTensor(image, width: width, height: height))
        let noise = try randn(eachOf: Array(initLatents.shape.dropFirst()), generators)
        let start = try repeated(initLatents, times: generators.count)
        return try addNoise(decoder, sampler, start, noise, sampler.timesteps[0])
    }

    /// prompt (+ negative prompt) through the prior with this request's step count and guidance.
    public func promptEmbeds(
        prior: OpaquePointer, prompt: String, negativePrompt negative: String?,
        generator: OpaquePointer
    ) throws -> (TensorHandle, TensorHandle) {
        let steps = try declared("prior_num_inference_steps", int)
        let guidance = try declared("prior_guidance_scale", double)
        var e: OpaquePointer?
        var n: OpaquePointer?
        let status = prompt.withCString { p in
            withOptionalCString(negative) { np in
                s.prior_embed_prompt(ctx, prior, p, np, Int32(steps), Float(guidance), generator, &e, &n)
            }
        }
        try check(status, "prior", reportedThroughContext: true)
        return (try adopt(e), try adopt(n))
    }

    /// Output size: the request's width/height or the model's natural size, rounded up as diffusers'
    /// downscale_height_and_width does (to a multiple of scale_factor^2).
    public func outputSize(_ info: kd_decoder_info_t) throws -> (height: Int, width: Int) {
        let f = Int(info.scale_factor)
        let q = f * f
        let h = try int("height") ?? modelDefault(Int(info.default_height), CommonParams.height)
        let w = try int("width") ?? modelDefault(Int(info.default_width), CommonParams.width)
        return ((h + q - 1) / q * q, (w + q - 1) / q * q)
    }

    /// A size from the model's kandinsky_defaults.json, held to the parameter's declared range as a user's value is.
    private func modelDefault(_ value: Int, _ declaration: ParamDecl) throws -> Int {
        guard Double(value) >= declaration.min && Double(value) <= declaration.max else {
            throw PluginFailure("the model's default \(declaration.key) \(value) (its kandinsky_defaults.json) is "
                                + "outside [\(Int(declaration.min)), \(Int(declaration.max))]")
        }
        return value
    }

    /// The decoder loop through the server, with the run's sampler (nil: the model's own, 1.0 host), over the N
    /// images of `latents` [N, C, h, w] with their rows of `embeds` and `negative`: in batches as large as the
    /// server's denoise_batch_limit allows (one image per call on a host before 1.5), image k's scheduler noise from
    /// generators[k]. `hint` [1, ...] and `extra` [copies, ...] are shared by every image. `hook(step, images,
    /// latents)` sees each batch's latents after each step (`images`: which of the run's images they are).
    public func denoise(
        _ decoder: OpaquePointer, latents: TensorHandle, sampler: SamplerHandle?, embeds: TensorHandle,
        negative: TensorHandle, generators: [GeneratorHandle], hint: TensorHandle? = nil,
        extra: TensorHandle? = nil, hook: ((Int, Range<Int>, TensorHandle) -> Void)? = nil
    ) throws -> TensorHandle {
        let count = generators.count
        let guidance = Float(try declared("guidance_scale", double))
        let shape = latents.shape
        var limit = 1
        if count > 1, serverHas(\.denoise_batch_limit) {
            limit = Int(s.denoise_batch_limit(decoder, Int32(shape[2]), Int32(shape[3]), guidance, UInt32(count)))
        }
        var batches: [TensorHandle] = []
        for first in stride(from: 0, to: count, by: max(limit, 1)) {
            let images = first..<min(first + max(limit, 1), count)
            batches.append(
                try denoiseBatch(
                    decoder, latents: try rows(latents, images), sampler: sampler, embeds: try rows(embeds, images),
                    negative: try rows(negative, images), generators: Array(generators[images]), guidance: guidance,
                    hint: hint, extra: extra, hook: hook.map { h in { step, lat in h(step, images, lat) } }))
        }
        return try stack(batches)
    }

    /// One denoise call on a batch that fits (see `denoise`).
    private func denoiseBatch(
        _ decoder: OpaquePointer, latents: TensorHandle, sampler: SamplerHandle?, embeds: TensorHandle,
        negative: TensorHandle, generators: [GeneratorHandle], guidance: Float, hint: TensorHandle?,
        extra: TensorHandle?, hook: ((Int, TensorHandle) -> Void)?
    ) throws -> TensorHandle {
        final class HookBox {
            let f: (Int, OpaquePointer) -> Void
            init(_ f: @escaping (Int, OpaquePointer) -> Void) { self.f = f }
        }
        let server = self.server
        let box = hook.map { h in HookBox { i, raw in h(i, TensorHandle(raw, server, owned: false)) } }
        let timesteps = try self.timesteps(decoder, sampler: sampler)
        let rawGenerators: [OpaquePointer?] = generators.map { $0.raw }
        var out: OpaquePointer?
        let status: kd_status = timesteps.withUnsafeBufferPointer { ts in
            rawGenerators.withUnsafeBufferPointer { generatorList in
                var a = kd_denoise_args_t()
                a.struct_size = VersionedStruct.size(of: kd_denoise_args_t.self)
                a.latents = latents.raw
                a.timesteps = ts.baseAddress
                a.timestep_count = UInt32(ts.count)
                a.image_embeds = embeds.raw
                a.negative_image_embeds = negative.raw
                a.guidance_scale = guidance
                a.hint = hint.map { $0.raw }
                a.extra_channels = extra.map { $0.raw }
                a.generator = generators[0].raw
                // A single image needs only the 1.0 field, which every host reads.
                if generators.count > 1 {
                    a.generators = generatorList.baseAddress
                    a.generator_count = UInt32(generators.count)
                }
                a.sampler = sampler.map { $0.raw }
                if let box {
                    a.step_hook = { user, i, lat in
                        Unmanaged<HookBox>.fromOpaque(user!).takeUnretainedValue().f(Int(i), lat!)
                        return Int32(KD_OK)
                    }
                    a.step_hook_user = Unmanaged.passUnretained(box).toOpaque()
                }
                return withExtendedLifetime((box, sampler, generators)) { s.denoise(ctx, decoder, &a, &out) }
            }
        }
        try check(status, "denoise", reportedThroughContext: true)
        return try adopt(out)
    }

    /// Image `index` of decoder latents [N, C, h, w] through MoVQ: pixels [1, 3, H, W] in [0, 1].
    public func decode(_ decoder: OpaquePointer, _ latents: TensorHandle, image index: Int) throws -> TensorHandle {
        try decode(decoder, try rows(latents, index..<index + 1))
    }

    /// Every image of decoder latents [N, C, h, w] decoded one at a time (MoVQ at full size is the run's largest
    /// working set) and written as output image k.
    public func writeOutputs(_ decoder: OpaquePointer, _ latents: TensorHandle) throws {
        for index in 0..<latents.shape[0] {
            try writeOutput(try decode(decoder, latents, image: index), index: index)
        }
    }

    public func decode(_ decoder: OpaquePointer, _ latents: TensorHandle) throws -> TensorHandle {
        var out: OpaquePointer?
        try check(s.movq_decode(decoder, latents.raw, &out), "movq_decode")
        return try adopt(out)
    }

    public func encode(_ decoder: OpaquePointer, _ pixels: TensorHandle) throws -> TensorHandle {
        var out: OpaquePointer?
        try check(s.movq_encode(decoder, pixels.raw, &out), "movq_encode")
        return try adopt(out)
    }

    /// add_noise as the run's sampler computes it (nil: the model's own scheduler, 1.0 host).
    public func addNoise(
        _ decoder: OpaquePointer, _ sampler: SamplerHandle?, _ x: TensorHandle, _ noise: TensorHandle,
        _ t: Int64
    ) throws -> TensorHandle {
        var out: OpaquePointer?
        if let sampler {
            try check(s.sampler_add_noise(sampler.raw, x.raw, noise.raw, t, &out), "sampler_add_noise")
        } else {
            try check(s.add_noise(decoder, x.raw, noise.raw, t, &out), "add_noise")
        }
        return try adopt(out)
    }

    /// Inpainting's conditioning from the server (diffusers' prepare_mask): keep [1, 1, H, W] -> the latent mask and
    /// the UNet's extra channels, doubled under classifier-free guidance.
    public func inpaintCondition(
        _ decoder: OpaquePointer, keep: TensorHandle,
        imageLatents: TensorHandle
    ) throws -> (mask: TensorHandle, extra: TensorHandle) {
        try require11(\.inpaint_condition, for: "inpainting")
        let copies: UInt32 = try declared("guidance_scale", double) > 1 ? 2 : 1
        var mask: OpaquePointer?
        var extra: OpaquePointer?
        try check(s.inpaint_condition(decoder, keep.raw, imageLatents.raw, copies, &mask, &extra), "inpaint_condition")
        return (try adopt(mask), try adopt(extra))
    }

    // MARK: images

    /// Resized copy (Pillow-exact); `body` sees the pixels, which are freed afterwards.
    public func resized<T>(
        _ img: UnsafePointer<kd_image_t>, width: Int, height: Int, filter: Int, reducingGap: Double,
        _ body: (kd_image_t) throws -> T
    ) throws -> T {
        guard let r = s.image_resize(img, Int32(width), Int32(height), kd_resample(filter), reducingGap) else {
            throw PluginFailure(
                "cannot resize a \(img.pointee.width)x\(img.pointee.height) image to \(width)x\(height)")
        }
        defer { s.image_release(r) }
        // Read as the host sized it: a 1.3 host's image ends before bits_per_sample.
        guard let image: kd_image_t = VersionedStruct.read(r, minimum: ABI10Size.image) else {
            throw PluginFailure("image_resize returned an image of struct_size \(r.pointee.struct_size)")
        }
        return try body(image)
    }

    /// An RGB picture as [1, 3, H, W] in [-1, 1] (v / 127.5 - 1 in float32, as diffusers), resized with
    /// PIL bicubic and reducing_gap 1 to width x height; grey is replicated and alpha dropped.
    public func pictureTensor(_ img: UnsafePointer<kd_image_t>, width: Int, height: Int) throws -> TensorHandle {
        let t = try tensor([1, 3, height, width])
        try resized(img, width: width, height: height, filter: KD_RESAMPLE_BICUBIC, reducingGap: 1) { r in
            let p = t.data
            let plane = width * height
            let ch = Int(r.channels)
            for y in 0..<height {
                let row = r.data! + y * Int(r.row_bytes)
                for x in 0..<width {
                    for c in 0..<3 { p[c * plane + y * width + x] = Float(row[x * ch + (ch < 3 ? 0 : c)]) / 127.5 - 1 }
                }
            }
        }
        return t
    }

    /// Writes [1, 3, H, W] in [0, 1] as output image `index` (see writePixels) and returns it for changes in place.
    @discardableResult
    public func writeOutput(_ pixels: TensorHandle, index: Int = 0) throws -> UnsafeMutablePointer<kd_image_t> {
        let shape = pixels.shape
        guard shape.count == 4, shape[1] == 3 else {
            throw PluginFailure("unexpected decoder output \(shape)", status: Int32(KD_ERR_FAILED))
        }
        let out = try allocateOutput(width: shape[3], height: shape[2], index: index)
        try writePixels(pixels, into: out)
        return out
    }

    /// Output image `index` of the run, width x height with `channels` (RGB unless said), host-owned.
    public func allocateOutput(width: Int, height: Int, channels: Int = 3, index: Int = 0) throws
        -> UnsafeMutablePointer<kd_image_t>
    {
        let out: UnsafeMutablePointer<kd_image_t>?
        if index == 0 {
            out = ctx.pointee.allocate_output?(ctx, Int32(width), Int32(height), Int32(channels))
        } else {
            out = runContextHas(\.allocate_output_at)
                ? ctx.pointee.allocate_output_at?(ctx, UInt32(index), Int32(width), Int32(height), Int32(channels))
                : nil
        }
        guard let out, out.pointee.data != nil else {
            throw PluginFailure(
                "cannot allocate output \(index) (\(width)x\(height))", status: Int32(KD_ERR_OUT_OF_MEMORY))
        }
        return out
    }

    /// [1, 3, H, W] in [0, 1] -> the RGB image `image` of that size: round-half-even(x * 255), as numpy_to_pil.
    public func writePixels(_ pixels: TensorHandle, into image: UnsafeMutablePointer<kd_image_t>) throws {
        let shape = pixels.shape
        let (h, w) = (shape[2], shape[3])
        precondition(image.pointee.width == w && image.pointee.height == h && image.pointee.channels == 3)
        let p = pixels.data
        let plane = w * h
        // The float-to-byte conversion below traps on NaN and values outside [0, 1]: check first, name the pixel.
        if let bad = (0..<pixels.count).first(where: { !(p[$0] >= 0 && p[$0] <= 1) }) {
            let at = bad % plane
            throw PluginFailure(
                "the decoded picture holds \(p[bad]) at pixel (x \(at % w), y \(at / w)), channel "
                    + "\(bad / plane): the MoVQ decoder produced NaN or infinity (broken weights?)",
                status: Int32(KD_ERR_FAILED))
        }
        for y in 0..<h {
            let row = image.pointee.data + y * Int(image.pointee.row_bytes)
            for x in 0..<w {
                for c in 0..<3 { row[x * 3 + c] = UInt8((p[c * plane + y * w + x] * 255).rounded(.toNearestOrEven)) }
            }
        }
    }

    // MARK: inpainting masks (ABI 1.2: the rules live in the server)

    /// A mask picture -> keep [1, 1, height, width] (1 = keep): the server's inpaint_mask.
    public func inpaintMask(
        _ mask: UnsafePointer<kd_image_t>, width: Int, height: Int, inverted: Bool, grow: Int
    ) throws -> TensorHandle {
        try require(\.inpaint_mask, minor: "1.2", for: "mask_grow and inpaint_area")
        var keep: OpaquePointer?
        try check(
            s.inpaint_mask(mask, Int32(width), Int32(height), inverted, Int32(grow), &keep),
            "inpaint_mask on the \(mask.pointee.width)x\(mask.pointee.height) mask")
        return try adopt(keep)
    }

    /// The crop box of inpaint_area "masked" around keep's repaint region (the server's inpaint_crop_box).
    public func inpaintCropBox(_ keep: TensorHandle, padding: Int, aspectWidth: Int, aspectHeight: Int) throws
        -> (x: Int, y: Int, width: Int, height: Int)
    {
        try require(\.inpaint_crop_box, minor: "1.2", for: "inpaint_area masked")
        var box = [Int32](repeating: 0, count: 4)
        let status = s.inpaint_crop_box(keep.raw, Int32(padding), Int32(aspectWidth), Int32(aspectHeight), &box)
        guard status == KD_OK else {
            throw PluginFailure("the mask marks nothing to repaint", status: Int32(KD_ERR_INVALID_ARGUMENT))
        }
        return (Int(box[0]), Int(box[1]), Int(box[2]), Int(box[3]))
    }

    /// Blends `picture` in place over `original` under `keep` with a seam of `blur` pixels (inpaint_composite).
    public func inpaintComposite(
        _ picture: UnsafeMutablePointer<kd_image_t>, over original: UnsafePointer<kd_image_t>, keep: TensorHandle,
        blur: Int
    ) throws {
        try require(\.inpaint_composite, minor: "1.2", for: "keep_unmasked")
        try check(s.inpaint_composite(picture, original, keep.raw, Int32(blur)), "inpaint_composite")
    }

    // MARK: depth estimation (ABI 1.3)

    /// The depth estimator named by depth_model_name, or the default set's.
    public func depthEstimator() throws -> OpaquePointer {
        try require(\.depth_estimate, minor: "1.3", for: "depth estimation from a picture")
        return try model(kind: "depth", reference: string("depth_model_name"))
    }

    /// transformers' depth-estimation pipeline on `image` (depth_estimate): `body` sees the 8-bit one-channel depth
    /// picture at the image's size (near = bright), which is freed afterwards.
    public func estimatedDepth<T>(
        _ image: UnsafePointer<kd_image_t>, estimator: OpaquePointer, _ body: (kd_image_t) throws -> T
    ) throws -> T {
        var picture: UnsafeMutablePointer<kd_image_t>?
        try check(
            s.depth_estimate(ctx, estimator, image, nil, &picture),
            "depth estimation of the \(image.pointee.width)x\(image.pointee.height) picture",
            reportedThroughContext: true)
        guard let picture else { throw PluginFailure("depth_estimate returned no picture") }
        defer { s.image_release(picture) }
        return try body(picture.pointee)
    }

    /// Whether the host's run context has `field` (ABI 1.5's fields are absent from an older host's).
    func runContextHas<F>(_ field: KeyPath<kd_run_context_t, F>) -> Bool {
        VersionedStruct.has(ctx.pointee.struct_size, field)
    }

    /// How many images the run makes: the host's output_count (ABI 1.5), which is num_images. A host before 1.5
    /// takes one output only, so it is refused more.
    public func imageCount() throws -> Int {
        let wanted = int("num_images") ?? 1
        let count = runContextHas(\.output_count) ? Int(ctx.pointee.output_count) : 1
        guard count == wanted else {
            throw PluginFailure(
                "num_images \(wanted) needs a host that speaks plugin ABI 1.5 (this one takes \(count) image per run)",
                status: Int32(KD_ERR_UNSUPPORTED))
        }
        return count
    }

    /// One generator per image of the run: image k's is seeded with the resolved seed + k.
    public func generators() throws -> [GeneratorHandle] {
        guard let seed = int("seed"), seed >= 0 else { throw PluginFailure("seed must be resolved by the host") }
        return try (0..<imageCount()).map { GeneratorHandle(s.generator_create(UInt64(seed + $0))!, server) }
    }
}

/// Pillow's convert("L") of one pixel: ITU-R 601-2 luma in fixed point for colour, the first channel otherwise.
/// One plane of the ControlNet hint from a depth map already at the output size (width x height floats into
/// `plane`): a 16-bit grey sample / 65535, so its precision reaches the hint, else the 8-bit grey (Pillow's
/// convert("L"), greyValue) / 255.
public func depthHintPlane(_ depth: kd_image_t, into plane: UnsafeMutablePointer<Float>) {
    let width = Int(depth.width)
    for y in 0..<Int(depth.height) {
        let row = depth.data! + y * Int(depth.row_bytes)
        for x in 0..<width {
            if depth.bits_per_sample == 16 {
                plane[y * width + x] = Float(UnsafeRawPointer(row).load(fromByteOffset: x * 2, as: UInt16.self)) / 65535
            } else {
                plane[y * width + x] = Float(greyValue(row, x: x, channels: Int(depth.channels))) / 255
            }
        }
    }
}

public func greyValue(_ row: UnsafeMutablePointer<UInt8>, x: Int, channels ch: Int) -> UInt32 {
    guard ch >= 3 else { return UInt32(row[x * ch]) }
    return (UInt32(row[x * ch]) * 19595 + UInt32(row[x * ch + 1]) * 38470 + UInt32(row[x * ch + 2]) * 7471 + 0x8000)
        >> 16
}

func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
