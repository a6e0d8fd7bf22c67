// Swift views of the C descriptors, copied out once at load time and checked for sanity. They are plain values
// (Codable): the worker sends them to front ends, which check requests with the same rules (Resolve.swift).
import Foundation
import KandinskyPluginABI
import PluginABIRules

public struct ParamSpec: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case int, float, string, bool
        case floatList = "float list"
        case seed
    }
    public let key: String
    public let help: String
    public let kind: Kind
    public let optional: Bool
    public let isModel: Bool
    public let min: Double, max: Double
    public let defaultText: String?
}

public struct InputSpec: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case image, mask, depth }
    public let key: String
    public let kind: Kind
    public let optional: Bool
    public let repeated: Bool
    /// KD_INPUT_WIDE: a 16-bit grey file reaches the plugin with its 16 bits.
    public let wide: Bool
    public let help: String

    /// Whether `name` is this input: its key, or for a repeated input its key and a number (image1, image2, ...).
    public func accepts(_ name: String) -> Bool {
        name == key || (repeated && name.hasPrefix(key) && Int(name.dropFirst(key.count)) != nil)
    }
}

public struct PluginSpec: Sendable, Codable, Equatable {
    public let id: String
    public let name: String
    public let version: String
    public let description: String
    public let aliases: [String]
    public let inputs: [InputSpec]
    public let params: [ParamSpec]
    public let library: String
    public let index: UInt32
}

public enum DescriptorError: Error, CustomStringConvertible {
    case bad(String)
    public var description: String {
        if case .bad(let s) = self { return s }
        return ""
    }
}

extension PluginSpec {
    /// Copies and validates a C descriptor; any malformation is an error (the library is then skipped).
    /// Read as the header's rules say: any struct_size from the 1.0 size up, arrays walked by their elements' size.
    public init(_ d: UnsafePointer<kd_plugin_desc_t>, library: String, index: UInt32) throws {
        guard
            let desc: kd_plugin_desc_t = VersionedStruct.read(
                d, minimum: ABI10Size.pluginDesc)
        else {
            throw DescriptorError.bad(
                "descriptor struct_size \(d.pointee.struct_size) is below the 1.0 size \(ABI10Size.pluginDesc)")
        }
        func str(_ p: UnsafePointer<CChar>?, _ what: String, required: Bool = true) throws -> String {
            guard let p else {
                if required { throw DescriptorError.bad("descriptor has no \(what)") }
                return ""
            }
            return String(cString: p)
        }
        let id = try str(desc.id, "id")
        self.id = id
        guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw DescriptorError.bad("plugin id '\(id)' is not a plain name")
        }
        name = try str(desc.name, "name")
        version = try str(desc.version, "version", required: false)
        description = try str(desc.description, "description", required: false)
        let aliases = try (0..<Int(desc.alias_count)).map { i in
            guard let a = desc.aliases?[i] else { throw DescriptorError.bad("\(id): alias \(i) is NULL") }
            return String(cString: a)
        }
        guard desc.input_count == 0 || desc.inputs != nil, desc.param_count == 0 || desc.params != nil else {
            throw DescriptorError.bad("\(id): NULL inputs or params with a non-zero count")
        }
        guard desc.input_count <= 64, desc.param_count <= 256 else {
            throw DescriptorError.bad("\(id): implausible input/parameter counts")
        }
        /// The elements of a descriptor array, walked by the size its first element states.
        func elements<T>(_ array: UnsafePointer<T>?, _ count: UInt32, minimum: UInt32, _ what: String) throws -> [T] {
            guard let array, count > 0 else { return [] }
            let stride = UnsafeRawPointer(array).load(as: UInt32.self)
            return try (0..<Int(count)).map { i in
                guard let element: T = VersionedStruct.element(array, index: i, stride: stride, minimum: minimum) else {
                    throw DescriptorError.bad("\(id): \(what) \(i) has struct_size below the 1.0 size")
                }
                return element
            }
        }
        let inputDescs = try elements(desc.inputs, desc.input_count, minimum: ABI10Size.inputDesc, "input")
        let inputs = try inputDescs.enumerated().map { i, x in
            let kinds: [UInt32: InputSpec.Kind] = [
                UInt32(KD_INPUT_IMAGE): .image, UInt32(KD_INPUT_MASK): .mask,
                UInt32(KD_INPUT_DEPTH): .depth,
            ]
            guard let kind = kinds[x.kind] else {
                throw DescriptorError.bad("\(id): input \(i) has unknown kind \(x.kind)")
            }
            return InputSpec(
                key: try str(x.key, "input key"), kind: kind, optional: x.flags & UInt32(KD_INPUT_OPTIONAL) != 0,
                repeated: x.flags & UInt32(KD_INPUT_REPEATED) != 0, wide: x.flags & UInt32(KD_INPUT_WIDE) != 0,
                help: try str(x.help, "help", required: false))
        }
        let paramDescs = try elements(desc.params, desc.param_count, minimum: ABI10Size.paramDesc, "parameter")
        let params = try paramDescs.enumerated().map { i, p in
            let kinds: [UInt32: ParamSpec.Kind] = [
                UInt32(KD_PARAM_INT): .int, UInt32(KD_PARAM_FLOAT): .float,
                UInt32(KD_PARAM_STRING): .string, UInt32(KD_PARAM_BOOL): .bool,
                UInt32(KD_PARAM_FLOAT_LIST): .floatList, UInt32(KD_PARAM_SEED): .seed,
            ]
            guard let kind = kinds[p.type] else {
                throw DescriptorError.bad("\(id): parameter \(i) has unknown type \(p.type)")
            }
            let key = try str(p.key, "parameter key")
            guard !key.isEmpty, p.min_value <= p.max_value || kind == .string || kind == .bool else {
                throw DescriptorError.bad("\(id): parameter '\(key)' has min > max")
            }
            return ParamSpec(
                key: key, help: try str(p.help, "help", required: false), kind: kind,
                optional: p.flags & UInt32(KD_PARAM_OPTIONAL) != 0, isModel: p.flags & UInt32(KD_PARAM_MODEL) != 0,
                min: p.min_value, max: p.max_value, defaultText: p.default_value.map { String(cString: $0) })
        }
        self.aliases = aliases
        self.inputs = inputs
        self.params = params
        self.library = library
        self.index = index
        // Every default must itself be a valid value.
        for p in params { if let d = p.defaultText { _ = try ParamValue.parse(d, for: p).get() } }
    }
}
