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
        // Only what the ABI's int32 fields can carry is checked here; the plugins hold sizes and steps to their
        // parameters' declared ranges.
        let int32Range = 1...Int(Int32.max)
        d.width = try c.int("width", default: 768, in: int32Range)
        d.height = try c.int("height", default: 768, in: int32Range)
        func opt(_ k: String) -> Bool { c.values[k] != nil && !(c.values[k] is NSNull) }
        d.steps = opt("num_inference_steps") ? try c.int("num_inference_steps", in: int32Range) : nil
        d.guidance = opt("guidance_scale") ? try c.double("guidance_scale") : nil
        d.priorSteps = opt("prior_num_inference_steps") ? try c.int("prior_num_inference_steps", in: int32Range) : nil
        d.priorGuidance = opt("prior_guidance_scale") ? try c.double("prior_guidance_scale") : nil
        c.ignore([
            "num_inference_steps", "guidance_scale", "prior_num_inference_steps", "prior_guidance_scale", "comment",
        ])
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
    init(_ folder: String, precision: Precision) throws {
        self.folder = folder
        defaults = try ModelDefaults.read(folder: folder)
        pipeline = try DecoderPipeline(folder: folder, precision: precision)
        bytes = float32Bytes(folder: folder)
    }
}

/// A depth estimator folder (transformers DPT or Depth Anything) and its pipeline.
public final class LoadedDepthEstimator {
    public let folder: String
    public let pipeline: DepthEstimationPipeline
    public let bytes: Int
    init(_ folder: String, precision: Precision) throws {
        self.folder = folder
        pipeline = try DepthEstimationPipeline(folder: folder, precision: precision)
        bytes = float32Bytes(folder: folder)
    }
}

public final class ModelServer: @unchecked Sendable {
    public let defaultPrior: String
    public let defaultDecoders: [String: String]
    /// The depth estimator of `controlnet-depth --image` and the depth plugin when a task names none.
    public let defaultDepthEstimator: String
    /// The precision every model of this server computes in (fp32 is the parity mode).
    public let precision: Precision
    private var priors: [String: LoadedPrior] = [:]
    private var decoders: [String: LoadedDecoder] = [:]
    private var depthEstimators: [String: LoadedDepthEstimator] = [:]
    /// Guards every field below and the caches above.
    private let lock = NSLock()
    private var priorLoadCount = 0, decoderLoadCount = 0, depthLoadCount = 0
    private var loadObserver: ((String) -> Void)?
    private var memoryBudget: Int?
    /// Folders in order of last use, oldest first.
    private var lastUse: [String] = []
    /// Runs in progress, and the models `trim()` dropped while some ran: their handles stay valid until no run is
    /// left that could hold them.
    private var activeRuns = 0
    private var retired: [AnyObject] = []

    /// - defaultDecoders: the decoder to use per kind ("text2img", "inpaint", "controlnet") when a task names none.
    /// - precision: see `Precision`; front ends resolve the user's "auto" with `Precision(choice:)`.
    public init(defaultPrior: String, defaultDecoders: [String: String], defaultDepthEstimator: String = "",
                precision: Precision = .fp32) {
        self.defaultPrior = defaultPrior
        self.defaultDecoders = defaultDecoders
        self.defaultDepthEstimator = defaultDepthEstimator
        self.precision = precision
    }

    /// Counts of actual loads, for tests that prove sharing.
    public var priorLoads: Int { lock.withLock { priorLoadCount } }
    public var decoderLoads: Int { lock.withLock { decoderLoadCount } }

    /// Called when a component starts loading or is dropped (the CLI shows it), on the thread that caused it and
    /// with the server's lock held: it must not call back into the server.
    public var onLoad: ((String) -> Void)? {
        get { lock.withLock { loadObserver } }
        set { lock.withLock { loadObserver = newValue } }
    }

    /// Budget for loaded weights (float32 bytes); enforced by `trim()` between tasks.
    public var maxMemory: Int? {
        get { lock.withLock { memoryBudget } }
        set { lock.withLock { memoryBudget = newValue } }
    }

    public func prior(_ reference: String?) throws -> LoadedPrior {
        let folder = try ModelResolver.resolve(reference.flatMap { $0.isEmpty ? nil : $0 } ?? defaultPrior)
        return try loadOnce(folder, \.priors, \.priorLoadCount, label: "prior") {
            try LoadedPrior($0, precision: precision)
        }
    }

    public func decoder(_ reference: String?, kind: String = "text2img") throws -> LoadedDecoder {
        let ref =
            reference.flatMap { $0.isEmpty ? nil : $0 } ?? defaultDecoders[kind] ?? defaultDecoders["text2img"] ?? ""
        return try loadOnce(try ModelResolver.resolve(ref), \.decoders, \.decoderLoadCount, label: "decoder") {
            try LoadedDecoder($0, precision: precision)
        }
    }

    public func depthEstimator(_ reference: String?) throws -> LoadedDepthEstimator {
        let ref = reference.flatMap { $0.isEmpty ? nil : $0 } ?? defaultDepthEstimator
        guard !ref.isEmpty else { throw ModelError.wrongKind("depth estimator", "none named and no default set") }
        return try loadOnce(try ModelResolver.resolve(ref), \.depthEstimators, \.depthLoadCount, label: "depth") {
            try LoadedDepthEstimator($0, precision: precision)
        }
    }

    /// The cached model for `folder`, loading it on first use. The lock is held while loading, so concurrent
    /// first requests load once.
    private func loadOnce<M>(
        _ folder: String, _ cache: ReferenceWritableKeyPath<ModelServer, [String: M]>,
        _ loads: ReferenceWritableKeyPath<ModelServer, Int>, label: String,
        _ make: (String) throws -> M
    ) throws -> M {
        lock.lock()
        defer { lock.unlock() }
        touch(folder)
        if let m = self[keyPath: cache][folder] { return m }
        loadObserver?("loading \(label) \(folder) (\(precision.rawValue))")
        let m = try make(folder)
        self[keyPath: cache][folder] = m
        self[keyPath: loads] += 1
        return m
    }

    private func touch(_ folder: String) {
        lastUse.removeAll { $0 == folder }
        lastUse.append(folder)
    }

    /// A run starts: model handles it obtains stay valid until the matching `endRun`.
    public func beginRun() { lock.withLock { activeRuns += 1 } }

    public func endRun() {
        lock.withLock {
            activeRuns -= 1
            if activeRuns == 0 { retired.removeAll() }
        }
    }

    /// Drops the least recently used models until the loaded weights fit `maxMemory`. Safe at any time: a model
    /// dropped while runs are in progress is freed only once none is left.
    public func trim() {
        lock.lock()
        defer { lock.unlock() }
        guard let budget = memoryBudget else { return }
        var total = priors.values.reduce(0) { $0 + $1.bytes } + decoders.values.reduce(0) { $0 + $1.bytes }
            + depthEstimators.values.reduce(0) { $0 + $1.bytes }
        while total > budget, let oldest = lastUse.first {
            lastUse.removeFirst()
            if let p = priors.removeValue(forKey: oldest) {
                total -= p.bytes
                retire(p)
                loadObserver?("dropped prior \(oldest) (--max-memory)")
            }
            if let d = decoders.removeValue(forKey: oldest) {
                total -= d.bytes
                retire(d)
                loadObserver?("dropped decoder \(oldest) (--max-memory)")
            }
            if let e = depthEstimators.removeValue(forKey: oldest) {
                total -= e.bytes
                retire(e)
                loadObserver?("dropped depth estimator \(oldest) (--max-memory)")
            }
        }
    }

    private func retire(_ model: AnyObject) {
        if activeRuns > 0 { retired.append(model) }
    }
}
