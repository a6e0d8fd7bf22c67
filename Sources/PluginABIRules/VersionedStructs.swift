// The header's versioning rules as Swift code, shared by the host, the model server and the Swift plugins' helpers
// (stateless, so plugins may link it without linking the engine). A struct that crosses the ABI is read and written
// only through these, so a 1.0 struct in a 1.1 reader, or a 1.1 struct in a 1.0 writer's buffer, is never over-read
// or over-written.
import KandinskyPluginABI

public enum VersionedStruct {
    /// The size a struct of type `T` has up to the end of `field` (the header's KD_SIZE_THROUGH).
    public static func sizeThrough<T, F>(_ field: KeyPath<T, F>) -> UInt32 {
        UInt32(MemoryLayout<T>.offset(of: field)! + MemoryLayout<F>.size)
    }

    /// Whether a struct of type `T` with `structSize` bytes holds `field` (the header's KD_STRUCT_HAS).
    public static func has<T, F>(_ structSize: UInt32, _ field: KeyPath<T, F>) -> Bool {
        structSize >= sizeThrough(field)
    }

    /// A copy of the `T` at `pointer` as its writer sized it (struct_size, the first field of every versioned
    /// struct): the bytes it covers, zero beyond (absent fields read as 0, absent functions as nil). Nil when that
    /// size is below `minimum` (the 1.0 size).
    public static func read<T>(_ pointer: UnsafeRawPointer, minimum: UInt32) -> T? {
        let structSize = pointer.load(as: UInt32.self)
        guard structSize >= minimum else { return nil }
        let copied = min(Int(structSize), MemoryLayout<T>.size)
        let buffer = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        buffer.copyMemory(from: pointer, byteCount: copied)
        return buffer.load(as: T.self)
    }

    /// Writes `value` into a caller's struct of `callerSize` bytes: at most that many bytes, and struct_size (the
    /// first field of every versioned struct) set to what was written.
    public static func write<T>(_ value: T, to pointer: UnsafeMutableRawPointer, callerSize: UInt32) {
        let written = min(Int(callerSize), MemoryLayout<T>.size)
        withUnsafeBytes(of: value) { pointer.copyMemory(from: $0.baseAddress!, byteCount: written) }
        pointer.storeBytes(of: UInt32(written), as: UInt32.self)
    }

    /// Element `index` of an array of versioned structs, `stride` = its first element's struct_size apart (the
    /// header's KD_ARRAY_AT), read as `read` reads one struct.
    public static func element<T>(_ array: UnsafeRawPointer, index: Int, stride: UInt32, minimum: UInt32) -> T? {
        guard stride >= minimum else { return nil }
        return read(array + index * Int(stride), minimum: minimum)
    }

    /// The struct_size a struct of type `T` states when this build writes it.
    public static func size<T>(of _: T.Type) -> UInt32 { UInt32(MemoryLayout<T>.size) }
}

/// The 1.0 size of every struct of the header (its KD_*_SIZE_1_0): the least a reader of this build accepts.
public enum ABI10Size {
    public static let image = VersionedStruct.sizeThrough(\kd_image_t.data)
    public static let paramDesc = VersionedStruct.sizeThrough(\kd_param_desc_t.default_value)
    public static let inputDesc = VersionedStruct.sizeThrough(\kd_input_desc_t.help)
    public static let pluginDesc = VersionedStruct.sizeThrough(\kd_plugin_desc_t.param_count)
    public static let value = VersionedStruct.sizeThrough(\kd_value_t.list_count)
    public static let namedImage = VersionedStruct.sizeThrough(\kd_named_image_t.image)
    public static let host = VersionedStruct.sizeThrough(\kd_host_t.get_extension)
    public static let runContext = VersionedStruct.sizeThrough(\kd_run_context_t.allocate_output)
    public static let pluginEntry = VersionedStruct.sizeThrough(\kd_plugin_entry_t.run)
    public static let decoderInfo = VersionedStruct.sizeThrough(\kd_decoder_info_t.default_steps)
    public static let denoiseArgs = VersionedStruct.sizeThrough(\kd_denoise_args_t.generator)
    public static let modelServer = VersionedStruct.sizeThrough(\kd_model_server_t.image_release)
    /// kd_sampler_args_t is new in 1.1.
    public static let samplerArgs = VersionedStruct.sizeThrough(\kd_sampler_args_t.strength)
}
