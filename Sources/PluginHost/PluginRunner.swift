// Runs one request: resolves parameters against the schema, builds the C run context, calls the plugin on this
// thread and returns its output images (one, or num_images: ABI 1.5's output_count).
import Foundation
import ImageProcessing
import KandinskyPluginABI
import ModelServer
import PluginSchema

public struct RunRequest {
    public var plugin: PluginSpec
    /// Validated values for every schema parameter that has one (defaults filled, seed resolved).
    public var params: [String: ParamValue]
    public var inputs: [String: PixelImage]

    public init(plugin: PluginSpec, params: [String: ParamValue], inputs: [String: PixelImage]) {
        self.plugin = plugin
        self.params = params
        self.inputs = inputs
    }

    /// How many images the run returns: num_images where the plugin declares it (image k is made with seed + k).
    public var imageCount: Int { ImageSeries.count(params) }
}

public enum RunError: Error, CustomStringConvertible {
    case failed(String, String)
    case cancelled(String)

    public var description: String {
        switch self {
        case .failed(let id, let why): return "\(id): \(why)"
        case .cancelled(let id): return "\(id): cancelled"
        }
    }
}

/// State of one run, reached from the C callbacks through host_data.
final class RunState {
    let progress: (String, Int, Int) -> Bool
    let isCancelled: () -> Bool
    var error: String?
    /// One slot per image the run returns, filled by allocate_output(_at).
    var outputs: [UnsafeMutablePointer<kd_image_t>?]
    init(outputCount: Int, progress: @escaping (String, Int, Int) -> Bool, isCancelled: @escaping () -> Bool) {
        outputs = Array(repeating: nil, count: outputCount)
        self.progress = progress
        self.isCancelled = isCancelled
    }
    deinit {
        for case let o? in outputs {
            free(o.pointee.data)
            o.deallocate()
        }
    }

    /// A zero-filled output image for slot `index`; nil for a bad index, a second call, a bad size or no memory.
    func allocate(index: Int, width w: Int32, height h: Int32, channels ch: Int32)
        -> UnsafeMutablePointer<kd_image_t>?
    {
        guard outputs.indices.contains(index), outputs[index] == nil, w > 0, h > 0, w <= 16384, h <= 16384,
            [1, 3, 4].contains(ch), let data = calloc(Int(w) * Int(h) * Int(ch), 1)
        else { return nil }
        let img = UnsafeMutablePointer<kd_image_t>.allocate(capacity: 1)
        img.initialize(
            to: kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: w, height: h, channels: ch,
                row_bytes: Int64(w) * Int64(ch), data: data.assumingMemoryBound(to: UInt8.self), bits_per_sample: 8))
        outputs[index] = img
        return img
    }
}

public enum PluginRunner {
    /// Runs a one-image `request` (see `runImages`) and returns its image.
    public static func run(
        _ request: RunRequest, registry: PluginRegistry,
        progress: @escaping (String, Int, Int) -> Bool = { _, _, _ in true },
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> PixelImage {
        precondition(request.imageCount == 1, "a request for several images goes through runImages")
        return try runImages(request, registry: registry, progress: progress, isCancelled: isCancelled)[0]
    }

    /// Runs `request` with `registry`'s library and returns its images (request.imageCount of them, image k made
    /// with seed + k). `progress(stage, step, total)` returns false to stop.
    public static func runImages(
        _ request: RunRequest, registry: PluginRegistry,
        progress: @escaping (String, Int, Int) -> Bool = { _, _, _ in true },
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [PixelImage] {
        let spec = request.plugin
        let state = RunState(outputCount: request.imageCount, progress: progress, isCancelled: isCancelled)
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        var cLists: [UnsafeMutablePointer<Double>] = []
        defer {
            cStrings.forEach { free($0) }
            cLists.forEach { $0.deallocate() }
        }
        func keep(_ s: String) -> UnsafePointer<CChar> {
            let p = strdup(s)!
            cStrings.append(p)
            return UnsafePointer(p)
        }

        var values: [kd_value_t] = spec.params.map { p in
            var v = kd_value_t()
            v.struct_size = UInt32(MemoryLayout<kd_value_t>.size)
            v.key = keep(p.key)
            guard let value = request.params[p.key] else { return v }
            v.has_value = true
            switch value {
            case .int(let i): v.int_value = i
            case .float(let f): v.float_value = f
            case .bool(let b): v.int_value = b ? 1 : 0
            case .string(let s): v.string_value = keep(s)
            case .floatList(let l):
                let buf = UnsafeMutablePointer<Double>.allocate(capacity: l.count)
                buf.initialize(from: l, count: l.count)
                cLists.append(buf)
                v.list_values = UnsafePointer(buf)
                v.list_count = UInt32(l.count)
            }
            return v
        }
        // Input pixels live in Swift arrays for the duration of the call.
        var images: [PixelImage] = []
        var keys: [String] = []
        for (k, img) in request.inputs.sorted(by: { $0.key < $1.key }) {
            keys.append(k)
            images.append(img)
        }
        // 16-bit samples go only to inputs that declared they take them; every other input sees 8 bits.
        let wideInputs = Set(keys.filter { key in spec.inputs.contains { $0.wide && $0.accepts(key) } })
        let pixelBuffers = zip(keys, images).map { key, img -> UnsafeMutableRawBufferPointer in
            if wideInputs.contains(key), let samples = img.wideSamples {
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(samples.count, 1) * 2, alignment: 2)
                samples.withUnsafeBytes { b.copyMemory(from: $0) }
                return b
            }
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(img.pixels.count, 1), alignment: 1)
            img.pixels.withUnsafeBytes { b.copyMemory(from: $0) }
            return b
        }
        defer { pixelBuffers.forEach { $0.deallocate() } }
        var cImages = (0..<images.count).map { i in
            let img = images[i]
            let bits: UInt32 = wideInputs.contains(keys[i]) && img.wideSamples != nil ? 16 : 8
            return kd_image_t(
                struct_size: UInt32(MemoryLayout<kd_image_t>.size), width: Int32(img.width), height: Int32(img.height),
                channels: Int32(img.channels), row_bytes: Int64(img.width * img.channels) * Int64(bits / 8),
                data: pixelBuffers[i].baseAddress!.assumingMemoryBound(to: UInt8.self), bits_per_sample: bits)
        }
        let entry = registry.entry(for: spec)
        // Model handles the plugin obtains stay valid for the whole run, whatever other tasks trim meanwhile.
        let server = ServerABI.server(of: registry.host)
        server?.beginRun()
        defer { server?.endRun() }
        let status: kd_status = cImages.withUnsafeMutableBufferPointer { imgs in
            var named = (0..<imgs.count).map { i in
                kd_named_image_t(
                    struct_size: UInt32(MemoryLayout<kd_named_image_t>.size), key: keep(keys[i]),
                    image: UnsafePointer(imgs.baseAddress! + i))
            }
            return named.withUnsafeMutableBufferPointer { namedBuf in
                values.withUnsafeMutableBufferPointer { valueBuf in
                    let unmanaged = Unmanaged.passUnretained(state)
                    var ctx = kd_run_context_t()
                    ctx.struct_size = UInt32(MemoryLayout<kd_run_context_t>.size)
                    ctx.host = registry.host
                    ctx.host_data = unmanaged.toOpaque()
                    ctx.params = UnsafePointer(valueBuf.baseAddress)
                    ctx.param_count = UInt32(valueBuf.count)
                    ctx.inputs = UnsafePointer(namedBuf.baseAddress)
                    ctx.input_count = UInt32(namedBuf.count)
                    ctx.progress = { c, stage, step, total in
                        let s = Unmanaged<RunState>.fromOpaque(c!.pointee.host_data).takeUnretainedValue()
                        return s.progress(stage.map { String(cString: $0) } ?? "", Int(step), Int(total))
                            && !s.isCancelled()
                    }
                    ctx.is_cancelled = { c in
                        Unmanaged<RunState>.fromOpaque(c!.pointee.host_data).takeUnretainedValue().isCancelled()
                    }
                    ctx.set_error = { c, msg in
                        Unmanaged<RunState>.fromOpaque(c!.pointee.host_data).takeUnretainedValue().error =
                            msg.map { String(cString: $0) } ?? "unknown error"
                    }
                    ctx.allocate_output = { c, w, h, ch in
                        Unmanaged<RunState>.fromOpaque(c!.pointee.host_data).takeUnretainedValue()
                            .allocate(index: 0, width: w, height: h, channels: ch)
                    }
                    ctx.output_count = UInt32(state.outputs.count)
                    ctx.allocate_output_at = { c, index, w, h, ch in
                        Unmanaged<RunState>.fromOpaque(c!.pointee.host_data).takeUnretainedValue()
                            .allocate(index: Int(index), width: w, height: h, channels: ch)
                    }
                    return withUnsafePointer(to: &ctx) { entry.run!(spec.index, $0) }
                }
            }
        }
        if status == KD_CANCELLED { throw RunError.cancelled(spec.id) }
        guard status == KD_OK else {
            throw RunError.failed(spec.id, state.error ?? "failed with status \(status) and no message")
        }
        return try state.outputs.enumerated().map { index, output in
            guard let output, let px = ServerABI.pixelImage(UnsafePointer(output)) else {
                let which =
                    state.outputs.count == 1 ? "an output image" : "output image \(index) of \(state.outputs.count)"
                throw RunError.failed(spec.id, "returned without \(which)")
            }
            return px
        }
    }
}
