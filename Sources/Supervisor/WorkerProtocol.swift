// The task protocol between a front end's supervisor and its worker process: one JSON object per line. The
// supervisor writes requests to the worker's standard input; the worker answers on its standard output (which it
// keeps for the protocol alone: anything a plugin prints goes to standard error).
import Foundation
import PluginSchema
#if canImport(Glibc)
import Glibc
#endif

/// One task for the worker: a plugin, its parameters and input files, and the output file to write.
public struct WorkerRequest: Codable, Sendable {
    /// Plugin id or alias.
    public var plugin: String
    /// Parameter values as the user wrote them (the worker resolves them against the plugin's schema).
    public var params: [String: String]
    /// Input name -> image file.
    public var inputs: [String: String]
    /// When true, keys of `params` that name one of the plugin's inputs are moved to `inputs` (a command line
    /// does not say which is which).
    public var splitInputs: Bool
    public var output: String
    /// Relative paths resolve against this folder.
    public var baseFolder: String

    public init(plugin: String, params: [String: String], inputs: [String: String], splitInputs: Bool = false,
                output: String, baseFolder: String) {
        self.plugin = plugin
        self.params = params
        self.inputs = inputs
        self.splitInputs = splitInputs
        self.output = output
        self.baseFolder = baseFolder
    }
}

/// What the worker says, in order: `loading` before and `loaded` after each plugin library's init, `ready` once all
/// are loaded; then per request `started` (the plugin it resolved to), any number of `progress`, `status` (shown
/// unless quiet) and `note` (always shown), ended by `done` or `failed`.
public struct WorkerEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case loading, loaded, ready, started, progress, status, note, done, failed
    }
    public var kind: Kind
    /// `loading`: the library about to be initialised; `started`: the library of the plugin that runs.
    public var library: String?
    /// `progress`: stage name, step and total.
    public var stage: String?
    public var step: Int?
    public var total: Int?
    /// `status`, `note`, `started` (the plugin id), `done` (what was written) and `failed` (why).
    public var message: String?
    /// `ready`: the schemas of every plugin the worker loaded (front ends check requests against them).
    public var plugins: [PluginSpec]?
    /// `done`: every parameter the plugin ran with, as text (defaults and a drawn seed included).
    public var parameters: [String: String]?
    /// `done`: the files written, one per image in image order (the request's output, or its numbered series for
    /// num_images above 1: ImageSeries.outputPaths).
    public var outputs: [String]?

    public init(kind: Kind, library: String? = nil, stage: String? = nil, step: Int? = nil, total: Int? = nil,
                message: String? = nil, plugins: [PluginSpec]? = nil, parameters: [String: String]? = nil,
                outputs: [String]? = nil) {
        self.kind = kind
        self.library = library
        self.stage = stage
        self.step = step
        self.total = total
        self.message = message
        self.plugins = plugins
        self.parameters = parameters
        self.outputs = outputs
    }
}

/// Reads newline-terminated lines from a file descriptor; nil at end of file.
public final class LineReader {
    private let descriptor: Int32
    private var buffer = Data()
    /// A line longer than this is a broken peer, not a message.
    static let maximumLineBytes = 16 << 20

    public init(descriptor: Int32) { self.descriptor = descriptor }

    public func nextLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count <= LineReader.maximumLineBytes else { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }
}

/// Writes one JSON object and a newline to a file descriptor, whole (the protocol's framing).
public func writeLine<T: Encodable>(_ value: T, to descriptor: Int32) -> Bool {
    guard var data = try? JSONEncoder().encode(value) else { return false }
    data.append(0x0A)
    return data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}
