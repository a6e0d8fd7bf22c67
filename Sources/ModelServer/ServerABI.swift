// The model server as plugins see it: the C table of KD_EXT_MODEL_SERVER ("kandinsky.model-server/1").
// Handles are Swift objects passed through Unmanaged: tensors and generators are retained for the plugin and
// released by it; model handles live as long as the process. Every argument is validated here, so a plugin's
// mistake is an error status, never a crash inside the engine.
import Checkpoint
import Foundation
import ImageProcessing
import KandinskyPluginABI
import Pipelines
import Schedulers
import TensorCore
import TorchRandom

public enum ServerABI {
    /// The host's one server; set once at start-up, before any plugin runs.
    nonisolated(unsafe) public static var server: ModelServer?

    /// The table handed out by get_extension(KD_EXT_MODEL_SERVER); immortal.
    nonisolated(unsafe) public static let table: UnsafeMutablePointer<kd_model_server_t> = {
        let t = UnsafeMutablePointer<kd_model_server_t>.allocate(capacity: 1)
        t.initialize(to: makeTable())
        return t
    }()

    static func tensor(_ p: OpaquePointer?) -> Tensor? { p.map { Unmanaged<Tensor>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() } }
    static func handOver(_ t: Tensor) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(t).toOpaque()) }
    static func generator(_ p: OpaquePointer?) -> TorchGenerator? {
        p.map { Unmanaged<TorchGenerator>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }
    static func model(_ p: OpaquePointer?) -> AnyObject? { p.map { Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() } }

    static func writeError(_ message: String, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int) {
        guard let buf, size > 0 else { return }
        let bytes = Array(message.utf8.prefix(size - 1))
        for (i, b) in bytes.enumerated() { buf[i] = CChar(bitPattern: b) }
        buf[bytes.count] = 0
    }

    static func fail(_ ctx: UnsafePointer<kd_run_context_t>?, _ message: String, _ status: Int32 = Int32(KD_ERR_FAILED)) -> kd_status {
        if let ctx, let set = ctx.pointee.set_error { message.withCString { set(ctx, $0) } }
        return status
    }

    /// A progress callback for the engine that forwards to the run context and maps "stop" to cancellation.
    static func progress(_ ctx: UnsafePointer<kd_run_context_t>?, stage: String) -> ((Int, Int) -> Bool)? {
        guard let ctx else { return nil }
        return { step, total in
            if let cancelled = ctx.pointee.is_cancelled, cancelled(ctx) { return false }
            guard let report = ctx.pointee.progress else { return true }
            return stage.withCString { report(ctx, $0, UInt32(step), UInt32(total)) }
        }
    }

    /// kd_image_t (any row stride) -> PixelImage.
    public static func pixelImage(_ img: UnsafePointer<kd_image_t>) -> PixelImage? {
        let i = img.pointee
        guard i.width > 0, i.height > 0, [1, 2, 3, 4].contains(i.channels), let data = i.data,
              i.row_bytes >= Int64(i.width * i.channels) else { return nil }
        var out = PixelImage(width: Int(i.width), height: Int(i.height), channels: Int(i.channels))
        let row = Int(i.width * i.channels)
        for y in 0..<Int(i.height) {
            out.pixels.withUnsafeMutableBufferPointer { dst in
                (dst.baseAddress! + y * row).update(from: data + y * Int(i.row_bytes), count: row)
            }
        }
        return out
    }

    /// A malloc'ed kd_image_t with malloc'ed pixels, released by image_release.
    static func cImage(_ p: PixelImage) -> UnsafeMutablePointer<kd_image_t> {
        let data = malloc(max(p.pixels.count, 1))!.assumingMemoryBound(to: UInt8.self)
        p.pixels.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: p.pixels.count) }
        let img = malloc(MemoryLayout<kd_image_t>.size)!.assumingMemoryBound(to: kd_image_t.self)
        img.initialize(to: kd_image_t(struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: Int32(p.width), height: Int32(p.height),
                                      channels: Int32(p.channels), row_bytes: Int64(p.width * p.channels), data: data))
        return img
    }

    static func makeTable() -> kd_model_server_t {
        var t = kd_model_server_t()
        t.struct_size = UInt32(MemoryLayout<kd_model_server_t>.size)
        t.tensor_create = { shape, rank in
            guard let shape, rank > 0, rank <= 8 else { return nil }
            let dims = (0..<Int(rank)).map { Int(shape[$0]) }
            guard dims.allSatisfy({ $0 > 0 && $0 < (1 << 31) }), dims.reduce(1, *) < (1 << 33) else { return nil }
            return ServerABI.handOver(Tensor(shape: dims, filledWith: 0))
        }
        t.tensor_release = { p in if let p { Unmanaged<Tensor>.fromOpaque(UnsafeRawPointer(p)).release() } }
        t.tensor_rank = { p in UInt32(ServerABI.tensor(p)?.rank ?? 0) }
        t.tensor_dim = { p, axis in
            guard let t = ServerABI.tensor(p), Int(axis) < t.rank else { return 0 }
            return Int64(t.shape[Int(axis)])
        }
        t.tensor_data = { p in ServerABI.tensor(p)?.data }
        t.generator_create = { seed in OpaquePointer(Unmanaged.passRetained(TorchGenerator(seed: seed)).toOpaque()) }
        t.generator_release = { p in if let p { Unmanaged<TorchGenerator>.fromOpaque(UnsafeRawPointer(p)).release() } }
        t.generator_randn = { g, p in
            guard let g = ServerABI.generator(g), let t = ServerABI.tensor(p) else { return }
            g.fillNormal(t.data, t.count)
        }
        t.prior = { ref, err, size in
            do {
                guard let server = ServerABI.server else { throw ModelError.wrongKind("model server", "not started") }
                let p = try server.prior(ref.map { String(cString: $0) })
                return OpaquePointer(Unmanaged.passUnretained(p as AnyObject).toOpaque())
            } catch {
                ServerABI.writeError("\(error)", err, size)
                return nil
            }
        }
        t.decoder = { ref, kind, err, size in
            do {
                guard let server = ServerABI.server else { throw ModelError.wrongKind("model server", "not started") }
                let d = try server.decoder(ref.map { String(cString: $0) }, kind: kind.map { String(cString: $0) } ?? "text2img")
                return OpaquePointer(Unmanaged.passUnretained(d as AnyObject).toOpaque())
            } catch {
                ServerABI.writeError("\(error)", err, size)
                return nil
            }
        }
        t.decoder_info = { m, info in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let info else { return Int32(KD_ERR_INVALID_ARGUMENT) }
            let p = d.pipeline
            info.pointee = kd_decoder_info_t(struct_size: UInt32(MemoryLayout<kd_decoder_info_t>.size),
                                             latent_channels: Int32(p.movq.config.latentChannels), unet_in_channels: Int32(p.unet.config.inChannels),
                                             scale_factor: Int32(p.movq.config.scaleFactor), has_hint: p.unet.config.additionEmbedType == "image_hint",
                                             default_width: Int32(d.defaults.width), default_height: Int32(d.defaults.height),
                                             default_steps: Int32(d.defaults.steps ?? 0))
            return Int32(KD_OK)
        }
        t.prior_embed_prompt = { ctx, m, prompt, negative, steps, guidance, g, outEmb, outNeg in
            guard let p = ServerABI.model(m) as? LoadedPrior, let prompt, let gen = ServerABI.generator(g), let outEmb, let outNeg else {
                return ServerABI.fail(ctx, "prior_embed_prompt: missing prior, prompt, generator or output", Int32(KD_ERR_INVALID_ARGUMENT))
            }
            guard steps >= 2 else { return ServerABI.fail(ctx, "prior_num_inference_steps must be at least 2 (got \(steps))", Int32(KD_ERR_INVALID_ARGUMENT)) }
            do {
                let (e, n) = try p.pipeline(prompt: String(cString: prompt), negativePrompt: negative.map { String(cString: $0) }, steps: Int(steps),
                                            guidance: guidance, generator: gen, progress: ServerABI.progress(ctx, stage: "prior"))
                outEmb.pointee = ServerABI.handOver(e)
                outNeg.pointee = ServerABI.handOver(n)
                MappedFile.releaseResidentPages(under: p.folder)
                return Int32(KD_OK)
            } catch is CancellationError {
                return Int32(KD_CANCELLED)
            } catch {
                return ServerABI.fail(ctx, "\(error)")
            }
        }
        t.prior_embed_image = { m, img, out in
            guard let p = ServerABI.model(m) as? LoadedPrior, let img, let out, let px = ServerABI.pixelImage(img) else {
                return Int32(KD_ERR_INVALID_ARGUMENT)
            }
            out.pointee = ServerABI.handOver(p.pipeline.imageEmbeds(px))
            MappedFile.releaseResidentPages(under: p.folder)
            return Int32(KD_OK)
        }
        t.set_timesteps = { m, steps, out, capacity, count in
            guard let d = ServerABI.model(m) as? LoadedDecoder, steps >= 1, steps <= 1000, let count else { return Int32(KD_ERR_INVALID_ARGUMENT) }
            d.lock.lock(); defer { d.lock.unlock() }
            d.pipeline.scheduler.setTimesteps(Int(steps))
            let ts = d.pipeline.scheduler.timesteps
            count.pointee = UInt32(ts.count)
            guard let out, Int(capacity) >= ts.count else { return Int32(KD_ERR_INVALID_ARGUMENT) }
            for (i, v) in ts.enumerated() { out[i] = Int64(v) }
            return Int32(KD_OK)
        }
        t.add_noise = { m, x, noise, step, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let x = ServerABI.tensor(x), let n = ServerABI.tensor(noise), let out,
                  x.shape == n.shape, step >= 0, step < Int64(d.pipeline.scheduler.schedule.alphasCumprod.count) else {
                return Int32(KD_ERR_INVALID_ARGUMENT)
            }
            out.pointee = ServerABI.handOver(d.pipeline.scheduler.addNoise(x, noise: n, timestep: Int(step)))
            return Int32(KD_OK)
        }
        t.movq_encode = { m, px, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let x = ServerABI.tensor(px), let out else { return Int32(KD_ERR_INVALID_ARGUMENT) }
            let f = d.pipeline.movq.config.scaleFactor
            guard x.rank == 4, x.dim(0) == 1, x.dim(1) == d.pipeline.movq.config.inChannels, x.dim(2) % f == 0, x.dim(3) % f == 0 else {
                return Int32(KD_ERR_INVALID_ARGUMENT)
            }
            out.pointee = ServerABI.handOver(d.pipeline.movq.encode(x))
            return Int32(KD_OK)
        }
        t.movq_decode = { m, lat, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let z = ServerABI.tensor(lat), let out,
                  z.rank == 4, z.dim(0) == 1, z.dim(1) == d.pipeline.movq.config.latentChannels else { return Int32(KD_ERR_INVALID_ARGUMENT) }
            out.pointee = ServerABI.handOver(toUnitRange(d.pipeline.movq.decode(z)))
            MappedFile.releaseResidentPages(under: d.folder + "/movq")
            return Int32(KD_OK)
        }
        t.denoise = { ctx, m, args, out in
            guard let d = ServerABI.model(m) as? LoadedDecoder, let a = args?.pointee, let out else {
                return ServerABI.fail(ctx, "denoise: missing decoder, arguments or output", Int32(KD_ERR_INVALID_ARGUMENT))
            }
            return ServerABI.denoise(ctx, d, a, out)
        }
        t.image_resize = { img, w, h, filter, gap in
            guard let img, let px = ServerABI.pixelImage(img), w > 0, h > 0, w <= 16384, h <= 16384,
                  let f = ResampleFilter(rawValue: Int(filter.rawValue)) else { return nil }
            return ServerABI.cImage(px.resized(width: Int(w), height: Int(h), filter: f, reducingGap: gap > 0 ? gap : nil))
        }
        t.image_release = { img in
            guard let img else { return }
            free(img.pointee.data)
            free(img)
        }
        return t
    }

    static func denoise(_ ctx: UnsafePointer<kd_run_context_t>?, _ d: LoadedDecoder, _ a: kd_denoise_args_t,
                        _ out: UnsafeMutablePointer<OpaquePointer?>) -> kd_status {
        let unet = d.pipeline.unet.config
        let latentC = d.pipeline.movq.config.latentChannels
        guard let latents = tensor(a.latents), latents.rank == 4, latents.dim(0) == 1, latents.dim(1) == latentC else {
            return fail(ctx, "denoise: latents must be [1, \(latentC), h, w]", Int32(KD_ERR_INVALID_ARGUMENT))
        }
        guard let emb = tensor(a.image_embeds), let neg = tensor(a.negative_image_embeds),
              emb.shape == [1, unet.encoderHidDim], neg.shape == emb.shape else {
            return fail(ctx, "denoise: image embeddings must be [1, \(unet.encoderHidDim)]", Int32(KD_ERR_INVALID_ARGUMENT))
        }
        guard let gen = generator(a.generator), let ts = a.timesteps, a.timestep_count > 0 else {
            return fail(ctx, "denoise: missing generator or timesteps", Int32(KD_ERR_INVALID_ARGUMENT))
        }
        let timesteps = (0..<Int(a.timestep_count)).map { Int(ts[$0]) }
        guard timesteps.allSatisfy({ $0 >= 0 && $0 < d.pipeline.scheduler.schedule.alphasCumprod.count }) else {
            return fail(ctx, "denoise: timesteps out of range", Int32(KD_ERR_INVALID_ARGUMENT))
        }
        let cfg = a.guidance_scale > 1
        let (h, w) = (latents.dim(2), latents.dim(3))
        let f = d.pipeline.movq.config.scaleFactor
        var hint: Tensor?
        if unet.additionEmbedType == "image_hint" {
            guard let t = tensor(a.hint), t.shape == [1, 3, h * f, w * f] else {
                return fail(ctx, "this decoder is a ControlNet: it needs a hint of [1, 3, \(h * f), \(w * f)]", Int32(KD_ERR_INVALID_ARGUMENT))
            }
            hint = t
        } else if a.hint != nil {
            return fail(ctx, "this decoder takes no hint (it is not a ControlNet model)", Int32(KD_ERR_UNSUPPORTED))
        }
        let extraC = unet.inChannels - latentC - (hint == nil ? 0 : 4)
        var extra: Tensor?
        if extraC > 0 {
            guard let e = tensor(a.extra_channels), e.shape == [cfg ? 2 : 1, extraC, h, w] else {
                return fail(ctx, "this decoder's UNet takes \(unet.inChannels) input channels: extra_channels must be [\(cfg ? 2 : 1), \(extraC), \(h), \(w)]",
                            Int32(KD_ERR_UNSUPPORTED))
            }
            extra = e
        } else if a.extra_channels != nil {
            return fail(ctx, "this decoder's UNet takes \(unet.inChannels) input channels and no extra ones", Int32(KD_ERR_UNSUPPORTED))
        }
        let hook = a.step_hook, user = a.step_hook_user
        var hookStatus = Int32(KD_OK)
        d.lock.lock(); defer { d.lock.unlock() }
        // The scheduler finds each step's predecessor in its own timestep list: give it the run's full schedule.
        if d.pipeline.scheduler.timesteps.firstIndex(of: timesteps[0]) == nil || !d.pipeline.scheduler.timesteps.hasSuffix(timesteps) {
            return fail(ctx, "denoise: timesteps must come from set_timesteps (possibly cut from the front)", Int32(KD_ERR_INVALID_ARGUMENT))
        }
        do {
            let result = try d.pipeline.denoise(
                latents: latents.copy(), timesteps: timesteps,
                conditioning: .init(imageEmbeds: emb, negativeImageEmbeds: neg, hint: hint), guidance: a.guidance_scale, generator: gen,
                extraChannels: extra,
                afterStep: { i, lat in
                    guard let hook, hookStatus == KD_OK else { return lat }
                    hookStatus = hook(user, UInt32(i), OpaquePointer(Unmanaged.passUnretained(lat).toOpaque()))
                    return lat
                },
                progress: { step, total in
                    if hookStatus != KD_OK { return false }
                    return progress(ctx, stage: "decoder")?(step, total) ?? true
                })
            out.pointee = handOver(result)
            MappedFile.releaseResidentPages(under: d.folder + "/unet")
            return Int32(KD_OK)
        } catch is CancellationError {
            return hookStatus != KD_OK ? hookStatus : Int32(KD_CANCELLED)
        } catch {
            return fail(ctx, "\(error)")
        }
    }
}

extension Array where Element: Equatable {
    func hasSuffix(_ s: [Element]) -> Bool { s.count <= count && Array(self[(count - s.count)...]) == s }
}
