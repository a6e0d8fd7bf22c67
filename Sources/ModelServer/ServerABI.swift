// The model server as plugins see it: the C table of KD_EXT_MODEL_SERVER ("kandinsky.model-server/1") and the host
// struct that hands it out. Tensors, generators and samplers are Swift objects passed through Unmanaged, retained
// for the plugin and released by it. Model handles are unretained: the server's caches (and, while runs are in
// progress, its list of models trimmed meanwhile) keep them alive. Every argument is validated here, so a plugin's
// mistake is an error status, never a crash inside the engine. No state is shared between runs: schedules are
// values computed per call, a sampler handle is immutable, and the state a sampler carries between steps lives
// inside one denoise call.
import Checkpoint
import Foundation
import ImageProcessing
import KandinskyPluginABI
import Pipelines
import PluginABIRules
import Schedulers
import TensorCore
import TorchRandom

/// What a host's `host_data` points at: the host's model server.
public final class ServerSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var installed: ModelServer?
    public var server: ModelServer? {
        get { lock.withLock { installed } }
        set { lock.withLock { installed = newValue } }
    }
    public init(_ server: ModelServer? = nil) { installed = server }
}

/// One run's sampler (kd_sampler_t): the decoder it belongs to, the sampler and the run's schedule. Immutable.
final class SamplerHandle {
    let decoder: LoadedDecoder
    let sampler: Sampler
    let schedule: [Int]
    let beginIndex: Int
    var timesteps: ArraySlice<Int> { schedule[beginIndex...] }

    init(decoder: LoadedDecoder, sampler: Sampler, schedule: [Int], beginIndex: Int) {
        self.decoder = decoder
        self.sampler = sampler
        self.schedule = schedule
        self.beginIndex = beginIndex
    }
}

public enum ServerABI {
    /// The process's host: its server is the one behind `processHost`'s host_data. ABI 1.0's prior()/decoder()
    /// take no host, so they reach this one.
    public static let processSlot = ServerSlot()

    /// The process's model server (set once at start-up, before any plugin runs).
    public static var server: ModelServer? {
        get { processSlot.server }
        set { processSlot.server = newValue }
    }

    /// A host struct whose host_data is `slot` and whose get_extension hands out the model server table; immortal.
    public static func makeHost(slot: ServerSlot, name: String = "kandinsky", version: String = "0.2.0")
        -> UnsafeMutablePointer<kd_host_t>
    {
        let host = UnsafeMutablePointer<kd_host_t>.allocate(capacity: 1)
        host.initialize(
            to: kd_host_t(
                struct_size: VersionedStruct.size(of: kd_host_t.self),
                abi: kd_version_t(major: KD_ABI_MAJOR, minor: KD_ABI_MINOR, patch: 0),
                name: UnsafePointer(strdup(name)), version: UnsafePointer(strdup(version)),
                host_data: Unmanaged.passRetained(slot).toOpaque(),
                get_extension: { _, id in
                    guard let id, String(cString: id) == KD_EXT_MODEL_SERVER else { return nil }
                    return UnsafeRawPointer(ServerABI.table)
                }))
        return host
    }

    /// The process's host struct, given to the plugins the registry loads.
    public static let processHost = UnsafePointer(makeHost(slot: processSlot))

    /// The table handed out by get_extension(KD_EXT_MODEL_SERVER); immortal.
    nonisolated(unsafe) public static let table: UnsafeMutablePointer<kd_model_server_t> = {
        let t = UnsafeMutablePointer<kd_model_server_t>.allocate(capacity: 1)
        t.initialize(to: makeTable())
        return t
    }()

    /// The server of the host that made `ctx`, through its host_data.
    static func server(of ctx: UnsafePointer<kd_run_context_t>?) -> ModelServer? { server(of: ctx?.pointee.host) }

    /// The server behind a host struct made by `makeHost`.
    public static func server(of host: UnsafePointer<kd_host_t>?) -> ModelServer? {
        guard let host, host.pointee.struct_size >= ABI10Size.host, let data = host.pointee.host_data else {
            return nil
        }
        return Unmanaged<ServerSlot>.fromOpaque(data).takeUnretainedValue().server
    }

    static func object<T: AnyObject>(_ p: OpaquePointer?, as _: T.Type) -> T? {
        p.map { Unmanaged<T>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }
    static func tensor(_ p: OpaquePointer?) -> Tensor? { object(p, as: Tensor.self) }
    static func generator(_ p: OpaquePointer?) -> TorchGenerator? { object(p, as: TorchGenerator.self) }
    static func samplerHandle(_ p: OpaquePointer?) -> SamplerHandle? { object(p, as: SamplerHandle.self) }
    static func model(_ p: OpaquePointer?) -> AnyObject? { object(p, as: AnyObject.self) }
    static func handOver(_ object: AnyObject) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(object).toOpaque())
    }
    static func release(_ p: OpaquePointer?) {
        if let p { Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(p)).release() }
    }
    static func lend(_ object: AnyObject) -> OpaquePointer {
        OpaquePointer(Unmanaged.passUnretained(object).toOpaque())
    }

    static func writeError(_ message: String, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int) {
        guard let buf, size > 0 else { return }
        let bytes = Array(message.utf8.prefix(size - 1))
        for (i, b) in bytes.enumerated() { buf[i] = CChar(bitPattern: b) }
        buf[bytes.count] = 0
    }

    static func fail(
        _ ctx: UnsafePointer<kd_run_context_t>?, _ message: String,
        _ status: Int32 = Int32(KD_ERR_FAILED)
    ) -> kd_status {
        if let ctx, let set = ctx.pointee.set_error { message.withCString { set(ctx, $0) } }
        return status
    }

    static let invalid = Int32(KD_ERR_INVALID_ARGUMENT)
    static let ok = Int32(KD_OK)

    /// A progress callback for the engine that forwards to the run context and maps "stop" to cancellation.
    static func progress(_ ctx: UnsafePointer<kd_run_context_t>?, stage: String) -> ((Int, Int) -> Bool)? {
        guard let ctx else { return nil }
        return { step, total in
            if let cancelled = ctx.pointee.is_cancelled, cancelled(ctx) { return false }
            guard let report = ctx.pointee.progress else { return true }
            return stage.withCString { report(ctx, $0, UInt32(step), UInt32(total)) }
        }
    }

    /// The longest side of an image a plugin may hand the server (Pillow's 178 M pixel error limit is a 13k square).
    static let maxImageSide: Int32 = 1 << 16

    /// kd_image_t (any row stride) -> PixelImage. A 16-bit one keeps its samples (wideSamples) only when asked
    /// (image_resize); every other service reads it by the high bytes, as the header says.
    public static func pixelImage(_ img: UnsafePointer<kd_image_t>, keepingWide: Bool = false) -> PixelImage? {
        guard
            let i: kd_image_t = VersionedStruct.read(
                img, minimum: ABI10Size.image),
            i.width > 0, i.height > 0, i.width <= maxImageSide, i.height <= maxImageSide,
            [1, 2, 3, 4].contains(i.channels), let data = i.data, [0, 8, 16].contains(i.bits_per_sample),
            i.bits_per_sample != 16 || i.channels == 1,
            i.row_bytes >= Int64(i.width) * Int64(i.channels) * (i.bits_per_sample == 16 ? 2 : 1)
        else { return nil }
        if i.bits_per_sample == 16 {
            var samples = [UInt16](repeating: 0, count: Int(i.width) * Int(i.height))
            samples.withUnsafeMutableBytes { dst in
                for y in 0..<Int(i.height) {
                    let row = UnsafeRawPointer(data + y * Int(i.row_bytes))
                    (dst.baseAddress! + y * Int(i.width) * 2).copyMemory(from: row, byteCount: Int(i.width) * 2)
                }
            }
            var wide = PixelImage(width: Int(i.width), height: Int(i.height), wideSamples: samples)
            if !keepingWide { wide.wideSamples = nil }
            return wide
        }
        var out = PixelImage(width: Int(i.width), height: Int(i.height), channels: Int(i.channels))
        let row = Int(i.width * i.channels)
        for y in 0..<Int(i.height) {
            out.pixels.withUnsafeMutableBufferPointer { dst in
                (dst.baseAddress! + y * row).update(from: data + y * Int(i.row_bytes), count: row)
            }
        }
        return out
    }

    /// A malloc'ed kd_image_t with malloc'ed pixels (16-bit samples when `p` has them), released by image_release.
    static func cImage(_ p: PixelImage) -> UnsafeMutablePointer<kd_image_t> {
        let bytes = p.wideSamples.map { $0.count * 2 } ?? p.pixels.count
        let data = malloc(max(bytes, 1))!
        if let samples = p.wideSamples {
            samples.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        } else {
            p.pixels.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        }
        let img = malloc(MemoryLayout<kd_image_t>.size)!.assumingMemoryBound(to: kd_image_t.self)
        img.initialize(
            to: kd_image_t(
                struct_size: VersionedStruct.size(of: kd_image_t.self), width: Int32(p.width),
                height: Int32(p.height), channels: Int32(p.channels),
                row_bytes: Int64(bytes / p.height), data: data.assumingMemoryBound(to: UInt8.self),
                bits_per_sample: p.wideSamples == nil ? 8 : 16))
        return img
    }

    /// Loads through `server` with the 1.0 error convention (message into a caller's buffer).
    static func loadModel(_ server: ModelServer?, kind: String, reference: String?) throws -> AnyObject {
        guard let server else { throw ModelError.wrongKind("model server", "not started") }
        if kind == "prior" { return try server.prior(reference) }
        if kind == "depth" { return try server.depthEstimator(reference) }
        guard ["text2img", "inpaint", "controlnet"].contains(kind) else {
            throw ModelError.wrongKind("model kind", "'\(kind)' (use prior, text2img, inpaint, controlnet or depth)")
        }
        return try server.decoder(reference, kind: kind)
    }

    static func makeTable() -> kd_model_server_t {
        var t = kd_model_server_t()
        t.struct_size = VersionedStruct.size(of: kd_model_server_t.self)
        t.tensor_create = { shape, rank in
            guard let shape, rank > 0, rank <= 8 else { return nil }
            let dims = (0..<Int(rank)).map { Int(shape[$0]) }
            guard dims.allSatisfy({ $0 > 0 && $0 < (1 << 31) }), dims.reduce(1, *) < (1 << 33) else { return nil }
            return ServerABI.handOver(Tensor(shape: dims, filledWith: 0))
        }
        t.tensor_release = { ServerABI.release($0) }
        t.tensor_rank = { p in UInt32(ServerABI.tensor(p)?.rank ?? 0) }
        t.tensor_dim = { p, axis in
            guard let t = ServerABI.tensor(p), Int(axis) < t.rank else { return 0 }
            return Int64(t.shape[Int(axis)])
        }
        t.tensor_data = { p in ServerABI.tensor(p)?.data }
        t.generator_create = { seed in ServerABI.handOver(TorchGenerator(seed: seed)) }
        t.generator_release = { ServerABI.release($0) }
        t.generator_randn = { g, p in
            guard let g = ServerABI.generator(g), let t = ServerABI.tensor(p) else { return }
            g.fillNormal(t.data, t.count)
        }
        t.prior = { ref, err, size in
            do {
                let model = try ServerABI.loadModel(
                    ServerABI.server, kind: "prior", reference: ref.map { String(cString: $0) })
                return ServerABI.lend(model)
            } catch {
                ServerABI.writeError("\(error)", err, size)
                return nil
            }
        }
        t.decoder = { ref, kind, err, size in
            do {
                let model = try ServerABI.loadModel(
                    ServerABI.server, kind: kind.map { String(cString: $0) } ?? "text2img",
                    reference: ref.map { String(cString: $0) })
                return ServerABI.lend(model)
            } catch {
                ServerABI.writeError("\(error)", err, size)
                return nil
            }
        }
        t.load_model = { ctx, kind, ref in
            do {
                let model = try ServerABI.loadModel(
                    ServerABI.server(of: ctx), kind: kind.map { String(cString: $0) } ?? "",
                    reference: ref.map { String(cString: $0) })
                return ServerABI.lend(model)
            } catch {
                _ = ServerABI.fail(ctx, "\(error)")
                return nil
            }
        }
        t.decoder_info = { m, info in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let info,
                info.pointee.struct_size >= ABI10Size.decoderInfo
            else {
                return ServerABI.invalid
            }
            let p = d.pipeline
            let value = kd_decoder_info_t(
                struct_size: 0, latent_channels: Int32(p.movq.config.latentChannels),
                unet_in_channels: Int32(p.unet.config.inChannels), scale_factor: Int32(p.movq.config.scaleFactor),
                has_hint: p.unet.config.additionEmbedType == "image_hint", default_width: Int32(d.defaults.width),
                default_height: Int32(d.defaults.height), default_steps: Int32(d.defaults.steps ?? 0))
            VersionedStruct.write(value, to: info, callerSize: info.pointee.struct_size)
            return ServerABI.ok
        }
        t.prior_embed_prompt = { ctx, m, prompt, negative, steps, guidance, g, outEmb, outNeg in
            guard let p = ServerABI.model(m) as? LoadedPrior, let prompt, let gen = ServerABI.generator(g),
                let outEmb, let outNeg
            else {
                return ServerABI.fail(
                    ctx, "prior_embed_prompt: missing prior, prompt, generator or output", ServerABI.invalid)
            }
            guard steps >= 2 else {
                return ServerABI.fail(
                    ctx, "prior_num_inference_steps must be at least 2 (got \(steps))", ServerABI.invalid)
            }
            do {
                let (e, n) = try p.pipeline(
                    prompt: String(cString: prompt), negativePrompt: negative.map { String(cString: $0) },
                    steps: Int(steps), guidance: guidance, generator: gen,
                    progress: ServerABI.progress(ctx, stage: "prior"))
                outEmb.pointee = ServerABI.handOver(e)
                outNeg.pointee = ServerABI.handOver(n)
                MappedFile.releaseResidentPages(under: p.folder)
                return ServerABI.ok
            } catch is CancellationError {
                return Int32(KD_CANCELLED)
            } catch {
                return ServerABI.fail(ctx, "\(error)")
            }
        }
        t.prior_embed_image = { m, img, out in
            guard let p = ServerABI.model(m) as? LoadedPrior, let img, let out, let px = ServerABI.pixelImage(img)
            else {
                return ServerABI.invalid
            }
            out.pointee = ServerABI.handOver(p.pipeline.imageEmbeds(px))
            MappedFile.releaseResidentPages(under: p.folder)
            return ServerABI.ok
        }
        t.set_timesteps = { m, steps, out, capacity, count in
            guard let d = ServerABI.model(m) as? LoadedDecoder, steps >= 1, steps <= 1000, let count,
                let sampler = try? d.pipeline.sampler()
            else { return ServerABI.invalid }
            return ServerABI.copy(sampler.timesteps(steps: Int(steps))[...], to: out, capacity: capacity, count: count)
        }
        t.add_noise = { m, x, noise, step, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let sampler = try? d.pipeline.sampler() else {
                return ServerABI.invalid
            }
            return ServerABI.addNoise(sampler, x, noise, step, out)
        }
        t.movq_encode = { m, px, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let x = ServerABI.tensor(px), let out else {
                return ServerABI.invalid
            }
            let f = d.pipeline.movq.config.scaleFactor
            guard x.rank == 4, x.dim(0) == 1, x.dim(1) == d.pipeline.movq.config.inChannels, x.dim(2) % f == 0,
                x.dim(3) % f == 0
            else { return ServerABI.invalid }
            out.pointee = ServerABI.handOver(d.pipeline.movq.encode(x))
            return ServerABI.ok
        }
        t.movq_decode = { m, lat, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let z = ServerABI.tensor(lat), let out,
                z.rank == 4, z.dim(0) == 1, z.dim(1) == d.pipeline.movq.config.latentChannels
            else { return ServerABI.invalid }
            out.pointee = ServerABI.handOver(toUnitRange(d.pipeline.movq.decode(z)))
            MappedFile.releaseResidentPages(under: d.folder + "/movq")
            return ServerABI.ok
        }
        t.denoise = { ctx, m, args, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let args, let out else {
                return ServerABI.fail(ctx, "denoise: missing decoder, arguments or output", ServerABI.invalid)
            }
            guard
                let a: kd_denoise_args_t = VersionedStruct.read(
                    args, minimum: ABI10Size.denoiseArgs)
            else {
                return ServerABI.fail(
                    ctx, "denoise: struct_size \(args.pointee.struct_size) is below the 1.0 size",
                    ServerABI.invalid)
            }
            return ServerABI.denoise(ctx, d, a, out)
        }
        t.image_resize = { img, w, h, filter, gap in
            // Pillow refuses a reducing_gap below 1 (and its factor, size / gap, would overflow an Int here).
            guard let img, let px = ServerABI.pixelImage(img, keepingWide: true), w > 0, h > 0, w <= 16384, h <= 16384,
                let f = ResampleFilter(rawValue: Int(filter)), !(gap > 0 && gap < 1),
                gap <= 0 || px.wideSamples == nil
            else { return nil }
            return ServerABI.cImage(
                px.resized(width: Int(w), height: Int(h), filter: f, reducingGap: gap > 0 ? gap : nil))
        }
        t.image_release = { img in
            guard let img else { return }
            free(img.pointee.data)
            free(img)
        }
        t.sampler_create = { m, args, err, size in
            do {
                return ServerABI.handOver(try ServerABI.makeSampler(m, args))
            } catch {
                ServerABI.writeError("\(error)", err, size)
                return nil
            }
        }
        t.sampler_release = { ServerABI.release($0) }
        t.sampler_timesteps = { s, out, capacity, count in
            guard let handle = ServerABI.samplerHandle(s), let count else { return ServerABI.invalid }
            return ServerABI.copy(handle.timesteps, to: out, capacity: capacity, count: count)
        }
        t.sampler_add_noise = { s, x, noise, step, out in
            guard let handle = ServerABI.samplerHandle(s) else { return ServerABI.invalid }
            return ServerABI.addNoise(handle.sampler, x, noise, step, out)
        }
        t.inpaint_condition = { m, keep, latents, copies, outMask, outExtra in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let keep = ServerABI.tensor(keep),
                let latents = ServerABI.tensor(latents), let outMask, let outExtra, copies == 1 || copies == 2
            else {
                return ServerABI.invalid
            }
            let f = d.pipeline.movq.config.scaleFactor
            guard keep.rank == 4, keep.dim(0) == 1, keep.dim(1) == 1, latents.rank == 4, latents.dim(0) == 1,
                latents.dim(1) == d.pipeline.movq.config.latentChannels, latents.dim(2) * f == keep.dim(2),
                latents.dim(3) * f == keep.dim(3)
            else { return ServerABI.invalid }
            let mask = InpaintConditioning.latentMask(keep: keep, height: latents.dim(2), width: latents.dim(3))
            outExtra.pointee = ServerABI.handOver(
                InpaintConditioning.extraChannels(
                    imageLatents: latents, latentMask: mask,
                    copies: Int(copies)))
            outMask.pointee = ServerABI.handOver(mask)
            return ServerABI.ok
        }
        t.inpaint_mask = { img, width, height, invert, grow, out in
            guard let img, let mask = ServerABI.pixelImage(img), width > 0, height > 0,
                width <= ServerABI.maxImageSide, height <= ServerABI.maxImageSide, abs(grow) <= 4096, let out
            else { return ServerABI.invalid }
            let (w, h) = (Int(width), Int(height))
            let region = InpaintMask.grown(
                InpaintMask.repaintRegion(of: mask, width: w, height: h, inverted: invert), width: w, height: h,
                by: Int(grow))
            let keep = Tensor(shape: [1, 1, h, w])
            for (i, repaint) in region.enumerated() { keep.data[i] = repaint ? 0 : 1 }
            out.pointee = ServerABI.handOver(keep)
            return ServerABI.ok
        }
        t.inpaint_crop_box = { keep, padding, aspectWidth, aspectHeight, box in
            guard let (region, w, h) = ServerABI.repaintRegion(keep), padding >= 0, aspectWidth > 0,
                aspectHeight > 0, aspectWidth <= ServerABI.maxImageSide, aspectHeight <= ServerABI.maxImageSide,
                let box,
                let found = InpaintMask.cropBox(
                    region, width: w, height: h, padding: Int(padding), aspectWidth: Int(aspectWidth),
                    aspectHeight: Int(aspectHeight))
            else { return ServerABI.invalid }
            for (i, v) in [found.x, found.y, found.width, found.height].enumerated() { box[i] = Int32(v) }
            return ServerABI.ok
        }
        t.inpaint_composite = { picture, original, keep, blur in
            guard let picture, let generated = ServerABI.pixelImage(picture), generated.channels == 3,
                let original, let base = ServerABI.pixelImage(original),
                let (region, w, h) = ServerABI.repaintRegion(keep),
                [base.width, base.height] == [w, h], [generated.width, generated.height] == [w, h], blur >= 0,
                blur <= 4096
            else { return ServerABI.invalid }
            var blended = generated
            InpaintMask.composite(
                &blended, over: base.rgb(),
                weights: InpaintMask.blendWeights(region, width: w, height: h, blur: Int(blur)))
            let rowBytes = Int(picture.pointee.row_bytes)
            blended.pixels.withUnsafeBufferPointer { source in
                for y in 0..<h {
                    (picture.pointee.data + y * rowBytes).update(from: source.baseAddress! + y * w * 3, count: w * 3)
                }
            }
            return ServerABI.ok
        }
        t.depth_estimate = { ctx, estimator, image, depthOut, pictureOut in
            guard let estimator = ServerABI.model(estimator) as? LoadedDepthEstimator, let image,
                let picture = ServerABI.pixelImage(image), depthOut != nil || pictureOut != nil
            else { return ServerABI.fail(ctx, "depth_estimate: not a depth estimator, or no image", ServerABI.invalid) }
            let report = ServerABI.progress(ctx, stage: "depth")
            if let report, !report(0, 1) { return Int32(KD_CANCELLED) }
            do {
                let result = try estimator.pipeline(picture)
                _ = report?(1, 1)
                depthOut?.pointee = ServerABI.handOver(result.depth.reshaped([1, 1, picture.height, picture.width]))
                pictureOut?.pointee = ServerABI.cImage(result.picture)
                return ServerABI.ok
            } catch {
                return ServerABI.fail(ctx, "depth estimation with \(estimator.folder): \(error)")
            }
        }
        t.denoise_batch_limit = { m, latentHeight, latentWidth, guidance, wanted in
            guard let d = ServerABI.model(m) as? LoadedDecoder, latentHeight > 0, latentWidth > 0, wanted > 0 else {
                return 1
            }
            let limit = d.pipeline.batchLimit(
                latentHeight: Int(latentHeight), latentWidth: Int(latentWidth), guidance: guidance,
                availableBytes: SystemMemory.availableBytes(), wanted: min(Int(wanted), ServerABI.maximumBatch))
            return UInt32(limit)
        }
        return t
    }

    /// The repaint flags of a keep tensor [1, 1, H, W] (a value below 0.5 = repaint) and its size.
    static func repaintRegion(_ keep: OpaquePointer?) -> (region: [Bool], width: Int, height: Int)? {
        guard let keep = tensor(keep), keep.rank == 4, keep.dim(0) == 1, keep.dim(1) == 1 else { return nil }
        let region = (0..<keep.count).map { keep.data[$0] < 0.5 }
        return (region, keep.dim(3), keep.dim(2))
    }

    static func copy(
        _ timesteps: ArraySlice<Int>, to out: UnsafeMutablePointer<Int64>?, capacity: UInt32,
        count: UnsafeMutablePointer<UInt32>
    ) -> kd_status {
        count.pointee = UInt32(timesteps.count)
        guard let out else { return timesteps.isEmpty ? ok : invalid }
        for (i, v) in timesteps.prefix(Int(capacity)).enumerated() { out[i] = Int64(v) }
        return Int(capacity) >= timesteps.count ? ok : invalid
    }

    static func addNoise(
        _ sampler: Sampler, _ x: OpaquePointer?, _ noise: OpaquePointer?, _ step: Int64,
        _ out: UnsafeMutablePointer<OpaquePointer?>?
    ) -> kd_status {
        guard let x = tensor(x), let n = tensor(noise), let out, x.shape == n.shape, step >= 0,
            step < Int64(sampler.schedule.alphasCumprod.count)
        else { return invalid }
        out.pointee = handOver(sampler.addNoise(x, noise: n, timestep: Int(step)))
        return ok
    }

    static func makeSampler(_ m: OpaquePointer?, _ args: UnsafePointer<kd_sampler_args_t>?) throws -> SamplerHandle {
        guard let d = model(m) as? LoadedDecoder else { throw PluginArgumentError("sampler_create: not a decoder") }
        guard let args,
            let a: kd_sampler_args_t = VersionedStruct.read(
                args, minimum: ABI10Size.samplerArgs)
        else {
            throw PluginArgumentError("sampler_create: missing arguments or struct_size below the 1.1 size")
        }
        let name = a.scheduler.map { String(cString: $0) } ?? ""
        var kind: SamplerKind?
        if !name.isEmpty {
            guard let named = SamplerKind(rawValue: name) else { throw SamplerError.unknown(name) }
            kind = named
        }
        guard a.steps >= 1, a.steps <= 1000 else {
            throw PluginArgumentError("num_inference_steps must be 1 to 1000 (got \(a.steps))")
        }
        guard a.strength >= 0, a.strength <= 1 else {
            throw PluginArgumentError("strength must be 0 to 1 (got \(a.strength))")
        }
        let sampler = try d.pipeline.sampler(kind)
        let schedule = sampler.timesteps(steps: Int(a.steps))
        let trainSteps = sampler.schedule.alphasCumprod.count
        if let beyond = schedule.first(where: { $0 < 0 || $0 >= trainSteps }) {
            throw PluginArgumentError(
                "\(sampler.kind.rawValue) with \(a.steps) steps gives timestep \(beyond), outside the "
                    + "model's \(trainSteps) training steps: use fewer steps")
        }
        let beginIndex = strengthBeginIndex(scheduleCount: schedule.count, strength: a.strength)
        return SamplerHandle(decoder: d, sampler: sampler, schedule: schedule, beginIndex: beginIndex)
    }

    /// The sampler and run of a denoise call: the 1.1 sampler handle, or (1.0) the model's own scheduler over the
    /// schedule that `timesteps` are the tail of.
    static func samplerRun(_ d: LoadedDecoder, _ a: kd_denoise_args_t, timesteps: [Int]) throws -> (Sampler, SamplerRun)
    {
        if VersionedStruct.has(a.struct_size, \kd_denoise_args_t.sampler), let raw = a.sampler {
            guard let handle = samplerHandle(raw), handle.decoder === d else {
                throw PluginArgumentError("denoise: the sampler belongs to another decoder")
            }
            guard timesteps.isEmpty || timesteps == Array(handle.timesteps) else {
                throw PluginArgumentError("denoise: timesteps must be the sampler's own (sampler_timesteps)")
            }
            return (handle.sampler, handle.sampler.makeRun(schedule: handle.schedule, beginIndex: handle.beginIndex))
        }
        let sampler = try d.pipeline.sampler()
        // 1.0 callers pass set_timesteps' list, possibly cut from the front: find the schedule it ends.
        for steps in max(timesteps.count, 1)...1000 {
            let schedule = sampler.timesteps(steps: steps)
            if schedule.count >= timesteps.count, Array(schedule.suffix(timesteps.count)) == timesteps,
                !timesteps.isEmpty
            {
                return (sampler, sampler.makeRun(schedule: schedule, beginIndex: schedule.count - timesteps.count))
            }
        }
        throw PluginArgumentError("denoise: timesteps must come from set_timesteps (possibly cut from the front)")
    }

    static func denoise(
        _ ctx: UnsafePointer<kd_run_context_t>?, _ d: LoadedDecoder, _ a: kd_denoise_args_t,
        _ out: UnsafeMutablePointer<OpaquePointer?>
    ) -> kd_status {
        let unet = d.pipeline.unet.config
        let latentC = d.pipeline.movq.config.latentChannels
        guard let latents = tensor(a.latents), latents.rank == 4, latents.dim(0) >= 1,
            latents.dim(0) <= maximumBatch, latents.dim(1) == latentC
        else {
            return fail(ctx, "denoise: latents must be [N, \(latentC), h, w] with N from 1 to \(maximumBatch)", invalid)
        }
        let images = latents.dim(0)
        guard let emb = tensor(a.image_embeds), let neg = tensor(a.negative_image_embeds),
            emb.shape == [images, unet.encoderHidDim], neg.shape == emb.shape
        else {
            return fail(
                ctx, "denoise: image embeddings must be [\(images), \(unet.encoderHidDim)], one row per image", invalid)
        }
        guard let noise = batchNoise(a, images: images), a.timestep_count <= 1000,
            a.timesteps != nil || a.timestep_count == 0
        else {
            return fail(
                ctx, "denoise: missing timesteps, or generators (one, or generator_count = \(images), one per image)",
                invalid)
        }
        let timesteps = (0..<Int(a.timestep_count)).map { Int(a.timesteps![$0]) }
        let sampler: Sampler
        let run: SamplerRun
        do {
            (sampler, run) = try samplerRun(d, a, timesteps: timesteps)
        } catch {
            return fail(ctx, "\(error)", invalid)
        }
        guard !run.timesteps.isEmpty else { return fail(ctx, "denoise: no timesteps to run", invalid) }
        let cfg = a.guidance_scale > 1
        let (h, w) = (latents.dim(2), latents.dim(3))
        let f = d.pipeline.movq.config.scaleFactor
        var hint: Tensor?
        if unet.additionEmbedType == "image_hint" {
            guard let t = tensor(a.hint), t.shape == [1, 3, h * f, w * f] || t.shape == [images, 3, h * f, w * f] else {
                return fail(ctx, "this decoder is a ControlNet: it needs a hint of [1, 3, \(h * f), \(w * f)]", invalid)
            }
            hint = t
        } else if a.hint != nil {
            return fail(ctx, "this decoder takes no hint (it is not a ControlNet model)", Int32(KD_ERR_UNSUPPORTED))
        }
        let extraC = unet.inChannels - latentC - (hint == nil ? 0 : 4)
        var extra: Tensor?
        if extraC > 0 {
            let copies = cfg ? 2 : 1
            guard let e = tensor(a.extra_channels),
                e.shape == [copies, extraC, h, w] || e.shape == [copies * images, extraC, h, w]
            else {
                return fail(
                    ctx,
                    "this decoder's UNet takes \(unet.inChannels) input channels: extra_channels must be "
                        + "[\(cfg ? 2 : 1), \(extraC), \(h), \(w)]", Int32(KD_ERR_UNSUPPORTED))
            }
            extra = e
        } else if a.extra_channels != nil {
            return fail(
                ctx, "this decoder's UNet takes \(unet.inChannels) input channels and no extra ones",
                Int32(KD_ERR_UNSUPPORTED))
        }
        let hook = a.step_hook
        let user = a.step_hook_user
        var hookStatus = ok
        do {
            let result = try d.pipeline.denoise(
                latents: latents.copy(), sampler: sampler, run: run,
                conditioning: .init(imageEmbeds: emb, negativeImageEmbeds: neg, hint: hint), guidance: a.guidance_scale,
                noise: noise, extraChannels: extra,
                afterStep: { i, lat in
                    guard let hook, hookStatus == KD_OK else { return lat }
                    hookStatus = hook(user, UInt32(i), lend(lat))
                    return lat
                },
                progress: { step, total in
                    if hookStatus != KD_OK { return false }
                    return progress(ctx, stage: "decoder")?(step, total) ?? true
                })
            out.pointee = handOver(result)
            MappedFile.releaseResidentPages(under: d.folder + "/unet")
            return ok
        } catch is CancellationError {
            return hookStatus != KD_OK ? hookStatus : Int32(KD_CANCELLED)
        } catch {
            return fail(ctx, "\(error)")
        }
    }
}

extension ServerABI {
    /// The most images one denoise call takes, whatever the memory: a bound on hostile input (num_images is declared
    /// up to this).
    static let maximumBatch = 64

    /// The scheduler noise of a denoise call: 1.5's one generator per image, or the one generator for the batch.
    static func batchNoise(_ a: kd_denoise_args_t, images: Int) -> BatchNoise? {
        if VersionedStruct.has(a.struct_size, \kd_denoise_args_t.generator_count), let list = a.generators {
            guard Int(a.generator_count) == images else { return nil }
            let generators = (0..<images).compactMap { generator(list[$0]) }
            return generators.count == images ? BatchNoise(perSample: generators) : nil
        }
        return generator(a.generator).map { BatchNoise($0) }
    }
}

/// A plugin passed an argument the server cannot use; the message names it.
struct PluginArgumentError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
