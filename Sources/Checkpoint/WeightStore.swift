// The weights of one model component (a diffusers/transformers subfolder such as `unet/` or `text_encoder/`),
// possibly spread over shards. Networks take tensors by their state-dict key; at the end `finish()` reports any
// checkpoint tensor that no layer took, so a config that does not match its weights never loads silently.
import Foundation
import TensorCore

public final class WeightStore: @unchecked Sendable {
    /// Name used in messages, usually the component folder.
    public let component: String
    private var files: [SafetensorsFile] = []
    private var index: [String: (file: SafetensorsFile, entry: TensorEntry)] = [:]
    private var taken: Set<String> = []
    private let lock = NSLock()
    /// The precision the layers built from this store compute in: bf16 keeps their large weights in bfloat16.
    public let precision: Precision

    public init(component: String, files: [SafetensorsFile], precision: Precision = .fp32) {
        self.component = component
        self.files = files
        self.precision = precision
        for f in files { for (k, e) in f.entries { index[k] = (f, e) } }
    }

    /// Opens the weights in a component folder. `variant` picks `NAME.VARIANT.safetensors` (diffusers' "fp16");
    /// without it the plain file is preferred and a variant file is used only when it is the sole one.
    public convenience init(folder: String, variant: String? = nil, precision: Precision = .fp32) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { throw CheckpointError.fileMissing(path: folder) }
        let names = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        let paths = try Self.weightFiles(in: names, variant: variant, folder: folder)
        self.init(component: folder, files: try paths.map { try SafetensorsFile(path: (folder as NSString).appendingPathComponent($0)) },
                  precision: precision)
    }

    static func weightFiles(in names: [String], variant: String?, folder: String) throws -> [String] {
        // Sharded checkpoints name their shards in an index file.
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        let chosenIndex = indexes.first { Self.variant(of: $0, suffix: ".safetensors.index.json") == variant }
            ?? (variant == nil ? indexes.first : nil)
        if let idx = chosenIndex {
            let path = (folder as NSString).appendingPathComponent(idx)
            guard let data = FileManager.default.contents(atPath: path),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw CheckpointError.badConfig(path: path, reason: "no weight_map object")
            }
            let shards = Array(Set(map.values)).sorted()
            for shard in shards where !Self.staysInside(folder: folder, name: shard) {
                throw CheckpointError.badConfig(path: path, reason: "weight_map names '\(shard)', which is not a file "
                                                + "inside the model folder")
            }
            return shards
        }
        let file = try listedFile(in: names, variant: variant, folder: folder)
        guard Self.staysInside(folder: folder, name: file) else {
            throw CheckpointError.badConfig(path: (folder as NSString).appendingPathComponent(file),
                                            reason: "a link that leads outside the model folder")
        }
        return [file]
    }

    /// The one weight file of an unsharded checkpoint, chosen from the folder's listing.
    private static func listedFile(in names: [String], variant: String?, folder: String) throws -> String {
        // The names diffusers and transformers save under come first; any other *.safetensors only if they are absent.
        let all = names.filter { $0.hasSuffix(".safetensors") }
        let standard = all.filter { ["diffusion_pytorch_model", "model"].contains($0.split(separator: ".").first.map(String.init) ?? "") }
        let single = standard.isEmpty ? all : standard
        if let v = variant {
            if let f = single.first(where: { Self.variant(of: $0, suffix: ".safetensors") == v }) { return f }
        }
        if let f = single.first(where: { Self.variant(of: $0, suffix: ".safetensors") == nil }) { return f }
        if let f = single.first { return f }
        if names.contains(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") || $0.hasSuffix(".ckpt") }) {
            throw CheckpointError.pickleOnly(folder: folder)
        }
        throw CheckpointError.noWeights(folder: folder)
    }

    /// Whether `name` (from a file in `folder`) names a file inside the folder: a plain relative name without `..`,
    /// which after resolving symlinks still lies in the folder, or, for a Hugging Face cache snapshot, in the model's
    /// cache folder (`models--ORG--NAME`, whose `blobs/` hold the files the snapshot links to).
    static func staysInside(folder: String, name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else { return false }
        let root = URL(fileURLWithPath: folder).resolvingSymlinksInPath()
        var roots = [root.path]
        var ancestor = root
        while ancestor.path != "/" {
            if ancestor.lastPathComponent.hasPrefix("models--") { roots.append(ancestor.path) }
            ancestor.deleteLastPathComponent()
        }
        let target = root.appendingPathComponent(name).resolvingSymlinksInPath().path
        return roots.contains { target.hasPrefix($0 + "/") }
    }

    /// "diffusion_pytorch_model.fp16.safetensors" -> "fp16"; "model.safetensors" -> nil.
    static func variant(of name: String, suffix: String) -> String? {
        let stem = String(name.dropLast(suffix.count))
        let parts = stem.split(separator: ".")
        return parts.count >= 2 ? String(parts.last!) : nil
    }

    public var keys: [String] { Array(index.keys) }
    public func entry(_ key: String) -> TensorEntry? { index[key]?.entry }

    /// The entry of weight `key`, checked against `shape` and marked as taken.
    private func take(_ key: String, shape: [Int]) throws -> (SafetensorsFile, TensorEntry) {
        guard let (file, entry) = index[key] else { throw CheckpointError.missingTensor(key: key, component: component) }
        guard entry.dtype.isFloat else { throw CheckpointError.unsupportedDType(path: file.path, tensor: key, dtype: entry.dtype.rawValue) }
        guard entry.shape == shape else {
            throw CheckpointError.shapeMismatch(key: key, expected: shape, found: entry.shape, component: component)
        }
        lock.lock(); taken.insert(key); lock.unlock()
        return (file, entry)
    }

    /// The tensor `key` as float32, checked against `shape`.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let (file, entry) = try take(key, shape: shape)
        return file.load(entry)
    }

    /// The tensor `key` as a layer weight: large half-precision matrices stay in the mapped file (widened per use in
    /// fp32, laid out once as bfloat16 in bf16), everything else is float32 in memory. In bf16 every matrix computes
    /// in bfloat16; a float32 file's matrices are then rounded once at first use and the float32 copy stays mapped.
    public func weight(_ key: String, shape: [Int]) throws -> Weight {
        let (file, entry) = try take(key, shape: shape)
        let layerPrecision: Precision = shape.count >= 2 ? precision : .fp32
        if entry.dtype != .f32 && shape.count >= 2 && entry.byteCount >= lazyThresholdBytes {
            return Weight(shape: shape, half: file.file.base + entry.offset, bfloat: entry.dtype == .bf16, owner: file.file,
                          precision: layerPrecision)
        }
        return Weight(file.load(entry), precision: layerPrecision)
    }

    /// Half-precision matrices at least this large are widened per use rather than at load.
    public var lazyThresholdBytes = 128 << 10

    /// Keys present in the checkpoint that no layer took.
    public func untakenKeys() -> [String] { index.keys.filter { !taken.contains($0) }.sorted() }

    public func finish() throws {
        let rest = untakenKeys()
        if !rest.isEmpty { throw CheckpointError.unexpectedTensors(keys: rest, component: component) }
    }

    /// A view that prefixes every key with `prefix.`; networks build themselves through these.
    public func scope(_ prefix: String) -> WeightScope { WeightScope(store: self, prefix: prefix) }
}

/// A key prefix inside a WeightStore: `scope("down_blocks.0").scope("resnets.1").tensor("conv1.weight", ...)`.
public struct WeightScope: @unchecked Sendable {
    public let store: WeightStore
    public let prefix: String

    public func scope(_ name: String) -> WeightScope {
        WeightScope(store: store, prefix: prefix.isEmpty ? name : prefix + "." + name)
    }
    public func scope(_ name: String, _ index: Int) -> WeightScope { scope("\(name).\(index)") }
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }
    public func tensor(_ name: String, _ shape: [Int]) throws -> Tensor { try store.tensor(key(name), shape: shape) }
    public func weight(_ name: String, _ shape: [Int]) throws -> Weight { try store.weight(key(name), shape: shape) }
    public func has(_ name: String) -> Bool { store.entry(key(name)) != nil }
}
