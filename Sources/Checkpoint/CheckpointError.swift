// Every loading failure says which file and what is wrong with it.

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case fileMissing(path: String)
    case unreadable(path: String, reason: String)
    case badHeader(path: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case missingTensor(key: String, component: String)
    case shapeMismatch(key: String, expected: [Int], found: [Int], component: String)
    case unexpectedTensors(keys: [String], component: String)
    case pickleOnly(folder: String)
    case noWeights(folder: String)
    case badConfig(path: String, reason: String)
    case unsupportedConfig(path: String, key: String, value: String)
    case modelNotFound(reference: String, searched: [String])

    public var description: String {
        switch self {
        case .fileMissing(let p): return "\(p): file not found"
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        case .badHeader(let p, let r): return "\(p): not a valid safetensors file: \(r)"
        case .unsupportedDType(let p, let t, let d):
            return "\(p): tensor '\(t)' has dtype \(d); only F32, F16 and BF16 weights are supported"
        case .missingTensor(let k, let c): return "\(c): tensor '\(k)' is missing from the checkpoint"
        case .shapeMismatch(let k, let e, let f, let c):
            return "\(c): tensor '\(k)' has shape \(f) but the config implies \(e)"
        case .unexpectedTensors(let ks, let c):
            let shown = ks.prefix(5).joined(separator: ", ")
            return "\(c): \(ks.count) tensor(s) in the checkpoint are not used by the configured network: \(shown)\(ks.count > 5 ? ", …" : "")"
        case .pickleOnly(let f):
            return "\(f): holds only PyTorch pickle weights (.bin/.pt); kandinsky never unpickles. Convert them to safetensors, e.g. with diffusers: `DiffusionPipeline.from_pretrained(path).save_pretrained(out, safe_serialization=True)`"
        case .noWeights(let f): return "\(f): no *.safetensors weights found"
        case .badConfig(let p, let r): return "\(p): invalid config: \(r)"
        case .unsupportedConfig(let p, let k, let v): return "\(p): config value \(k) = \(v) is not supported by this engine"
        case .modelNotFound(let r, let s):
            return "model '\(r)' is not on disk (looked in: \(s.joined(separator: ", "))). Fetch it on a machine with network access, e.g. `huggingface-cli download \(r)`, then copy the cache folder here or pass the model folder's path"
        }
    }
}
