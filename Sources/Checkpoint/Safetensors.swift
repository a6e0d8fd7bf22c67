// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw tensor bytes.
// Every header field is validated before any byte of tensor data is touched.
import Foundation
import TensorCore

public enum DType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    /// Read as data (fixtures keep 8-bit pixels this way); never accepted as a weight (WeightStore).
    case u8 = "U8"
    public var size: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .u8: return 1
        }
    }
    public var isFloat: Bool { self != .u8 }
}

public struct TensorEntry: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte offset of the first element from the start of the file.
    public let offset: Int
    public let byteCount: Int
}

public final class SafetensorsFile: @unchecked Sendable {
    /// Headers past this size are rejected as corrupt (real checkpoints have headers of a few hundred kB).
    public static let maxHeaderBytes = 100 << 20

    public let path: String
    public let file: MappedFile
    public let entries: [String: TensorEntry]
    public let metadata: [String: String]

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        self.file = file
        func bad(_ r: String) -> CheckpointError { .badHeader(path: path, reason: r) }
        guard file.size >= 8 else { throw bad("file is \(file.size) bytes, shorter than the 8-byte header length") }
        let headerLen = Int(UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self)).clamped(to: UInt64(Int.max)))
        guard headerLen <= Self.maxHeaderBytes else { throw bad("header length \(headerLen) exceeds \(Self.maxHeaderBytes) bytes") }
        guard headerLen <= file.size - 8 else { throw bad("header length \(headerLen) runs past the end of the \(file.size)-byte file (truncated?)") }
        let headerData = Data(bytes: file.base + 8, count: headerLen)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch { throw bad("header is not well-formed JSON") }
        guard let dict = json as? [String: Any] else { throw bad("header is not a JSON object") }
        let dataStart = 8 + headerLen
        let dataSize = file.size - dataStart
        var entries: [String: TensorEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let e = value as? [String: Any] else { throw bad("entry '\(name)' is not an object") }
            guard let dtypeName = e["dtype"] as? String else { throw bad("entry '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                let known = ["BOOL", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F64", "F8_E4M3", "F8_E5M2"]
                if known.contains(dtypeName) { throw CheckpointError.unsupportedDType(path: path, tensor: name, dtype: dtypeName) }
                throw bad("entry '\(name)' has unknown dtype '\(dtypeName)'")
            }
            guard let shapeAny = e["shape"] as? [Any], let shape = Self.ints(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("entry '\(name)' has an invalid shape")
            }
            guard let offAny = e["data_offsets"] as? [Any], let offs = Self.ints(offAny), offs.count == 2 else {
                throw bad("entry '\(name)' has invalid data_offsets")
            }
            let (begin, end) = (offs[0], offs[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw bad("entry '\(name)' data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data section (truncated?)")
            }
            var elements = 1
            for d in shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw bad("entry '\(name)' shape \(shape) overflows") }
                elements = p
            }
            guard elements * dtype.size == end - begin else {
                throw bad("entry '\(name)' shape \(shape) x \(dtype.rawValue) needs \(elements * dtype.size) bytes but data_offsets span \(end - begin)")
            }
            entries[name] = TensorEntry(name: name, dtype: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
        }
        let sorted = entries.values.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw bad("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func ints(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 9e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    /// The tensor as float32: f32 data is used in place (the tensor keeps this file mapped); f16, bf16 and u8 are widened.
    public func load(_ entry: TensorEntry) -> Tensor {
        let src = file.base + entry.offset
        let n = entry.shape.reduce(1, *)
        switch entry.dtype {
        case .f32:
            if Int(bitPattern: src) % 4 == 0 {
                return Tensor(shape: entry.shape, borrowing: UnsafeMutablePointer(mutating: src.assumingMemoryBound(to: Float.self)), owner: file)
            }
            let t = Tensor(shape: entry.shape)
            memcpy(t.data, src, n * 4)
            return t
        case .f16, .bf16:
            let t = Tensor(shape: entry.shape)
            widen(src, bfloat: entry.dtype == .bf16, into: t.data, count: n)
            return t
        case .u8:
            let t = Tensor(shape: entry.shape)
            let bytes = src.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { t.data[i] = Float(bytes[i]) }
            return t
        }
    }
}

private extension UInt64 {
    func clamped(to m: UInt64) -> UInt64 { Swift.min(self, m) }
}
