// The one model server of a host process: resolves references, loads each prior and decoder lazily and once,
// and hands the same instances to every plugin, run and workflow task. Thread-safe.
import Checkpoint
import Foundation
import Networks
import Pipelines
import TensorCore

/// Per-model defaults kept as data beside the weights (`kandinsky_defaults.json` in the decoder folder), so a small
/// model trained at 64x64 and the published 768x768 weights each get their natural size without code changes.
public struct ModelDefaults: Sendable, Equatable {
    public var width = 768, height = 768
    public var steps: Int?
    public var guidance: Double?
    public var priorSteps: Int?
    public var priorGuidance: Double?

    public init() {}

    public static let fileName = "kandinsky_defaults.json"

    public static func read(folder: String) throws -> ModelDefaults {
        var d = ModelDefaults()
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return d }
        let c = try ConfigReader(path: path)
        d.width = try c.int("width", default: 768)
        d.height = try c.int("height", default: 768)
        func opt(_ k: String) -> Bool { c.values[k] != nil && !(c.values[k] is NSNull) }
        d.steps = opt("num_inference_steps") ? try c.int("num_inference_steps") : nil
        d.guidance = opt("guidance_scale") ? try c.double("guidance_scale") : nil
        d.priorSteps = opt("prior_num_inference_steps") ? try c.int("prior_num_inference_steps") : nil
        d.priorGuidance = opt("prior_guidance_scale") ? try c.double("prior_guidance_scale") : nil
        c.ignore(["num_inference_steps", "guidance_scale", "prior_num_inference_steps", "prior_guidance_scale", "comment"])
        try c.finish()
        return d
    }
}

/// Bytes the weights of a model folder take as float32 (from the safetensors headers, without loading).
func float32Bytes(folder: String) -> Int {
    var total = 0
    let fm = FileManager.default
    for c in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] {
        if let store = try? WeightStore(folder: (folder as NSString).appendingPathComponent(c)) {
            total += store.keys.reduce(0) { $0 + (store.entry($1)?.shape.reduce(1, *) ?? 0) * 4 }
        }
    }
    return total
}

public final class LoadedPrior {
    public let folder: String
    public let pipeline: PriorPipeline
    public let bytes: Int
    init(_ folder: String, precision: Precision) throws {
        self.folder = folder
        pipeline = try PriorPipeline(folder: folder, precision: precision)
        bytes = float32Bytes(folder: folder)
    }
}

public final class LoadedDecoder {
    public let folder: String
    public let pipeline: DecoderPipeline
    public let defaults: ModelDefaults
    public let bytes: Int
    /// One denoising loop at a time per decoder: the scheduler holds the timesteps of the run in progress.
    let lock = NSLock()
    init(_ folder: String, precision: Precision) throws {
        self.folder = folder
        defaults = try ModelDefaults.read(folder: folder)
        pipeline = try DecoderPipeline(folder: folder, precision: precision)
        bytes = float32Bytes(folder: folder)
    }
}

public final class ModelServer: @unchecked Sendable {
    public let defaultPrior: String
    public let defaultDecoders: [String: String]
    /// The precision every model of this server computes in (fp32 is the parity mode).
    public let precision: Precision
    private var priors: [String: LoadedPrior] = [:]
    private var decoders: [String: LoadedDecoder] = [:]
    private let lock = NSLock()
    /// Counts of actual loads, for tests that prove sharing.
    public private(set) var priorLoads = 0, decoderLoads = 0
    /// Called when a component starts and ends loading (the CLI shows it).
    public var onLoad: ((String) -> Void)?
    /// Budget for loaded weights (float32 bytes); enforced by `trim()` between tasks.
    public var maxMemory: Int?
    /// Folders in order of last use, oldest first.
    private var lastUse: [String] = []

    /// - defaultDecoders: the decoder to use per kind ("text2img", "inpaint", "controlnet") when a task names none.
    /// - precision: see `Precision`; front ends resolve the user's "auto" with `Precision(choice:)`.
    public init(defaultPrior: String, defaultDecoders: [String: String], precision: Precision = .fp32) {
        self.defaultPrior = defaultPrior
        self.defaultDecoders = defaultDecoders
        self.precision = precision
    }

    public func prior(_ reference: String?) throws -> LoadedPrior {
        let folder = try ModelResolver.resolve(reference.flatMap { $0.isEmpty ? nil : $0 } ?? defaultPrior)
        return try loadOnce(folder, \.priors, \.priorLoads, label: "prior") { try LoadedPrior($0, precision: precision) }
    }

    public func decoder(_ reference: String?, kind: String = "text2img") throws -> LoadedDecoder {
        let ref = reference.flatMap { $0.isEmpty ? nil : $0 } ?? defaultDecoders[kind] ?? defaultDecoders["text2img"] ?? ""
        return try loadOnce(try ModelResolver.resolve(ref), \.decoders, \.decoderLoads, label: "decoder") { try LoadedDecoder($0, precision: precision) }
    }

    /// The cached model for `folder`, loading it on first use. The lock is held while loading, so concurrent
    /// first requests load once.
    private func loadOnce<M>(_ folder: String, _ cache: ReferenceWritableKeyPath<ModelServer, [String: M]>,
                             _ loads: ReferenceWritableKeyPath<ModelServer, Int>, label: String, _ make: (String) throws -> M) throws -> M {
        lock.lock(); defer { lock.unlock() }
        touch(folder)
        if let m = self[keyPath: cache][folder] { return m }
        onLoad?("loading \(label) \(folder) (\(precision.rawValue))")
        let m = try make(folder)
        self[keyPath: cache][folder] = m
        self[keyPath: loads] += 1
        return m
    }

    private func touch(_ folder: String) {
        lastUse.removeAll { $0 == folder }
        lastUse.append(folder)
    }

    /// Drops the least recently used models until the loaded weights fit `maxMemory`. Call only between runs:
    /// a running plugin holds model handles, which the cache alone keeps alive.
    public func trim() {
        guard let budget = maxMemory else { return }
        lock.lock(); defer { lock.unlock() }
        var total = priors.values.reduce(0) { $0 + $1.bytes } + decoders.values.reduce(0) { $0 + $1.bytes }
        while total > budget, let oldest = lastUse.first {
            lastUse.removeFirst()
            if let p = priors.removeValue(forKey: oldest) { total -= p.bytes; onLoad?("dropped prior \(oldest) (--max-memory)") }
            if let d = decoders.removeValue(forKey: oldest) { total -= d.bytes; onLoad?("dropped decoder \(oldest) (--max-memory)") }
        }
    }
}
