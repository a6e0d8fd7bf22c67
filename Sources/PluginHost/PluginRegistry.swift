// Finds and loads plugin libraries. A library is dlopen'ed once and never closed (Swift code cannot be safely
// unloaded); one whose ABI major differs, whose entry is missing, or whose descriptors are malformed is skipped
// with a warning naming the file and the reason.
import Foundation
import KandinskyPluginABI
import ModelServer
import PluginABIRules
import PluginSchema

public final class PluginRegistry {
    public private(set) var plugins: [PluginSpec] = []
    public private(set) var warnings: [String] = []
    /// Each library's entry table, as read under the header's size rules.
    private var entries: [String: kd_plugin_entry_t] = [:]
    /// The host interface given to this registry's plugins, and to their runs.
    public let host: UnsafePointer<kd_host_t>

    /// - host: the host struct plugins see; the process's one (whose server is `ServerABI.server`) by default.
    public init(host: UnsafePointer<kd_host_t> = ServerABI.processHost) { self.host = host }

    /// Plugin folders in search order: beside the executable (and its `plugins/`), `lib/kandinsky/plugins` of the
    /// prefix an installed `bin/kandinsky` lies in (tools/install.sh), KANDINSKY_PLUGIN_PATH (colon-separated), then
    /// the user folder ~/.local/share/kandinsky/plugins.
    public static func searchPath(
        executable: String = CommandLine.arguments[0],
        environment env: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        let exe = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent().path
        let prefix = URL(fileURLWithPath: exe).deletingLastPathComponent()
        var dirs = [exe, exe + "/plugins", prefix.appendingPathComponent("lib/kandinsky/plugins").path]
        if let extra = env["KANDINSKY_PLUGIN_PATH"] { dirs += extra.split(separator: ":").map(String.init) }
        dirs.append(
            ((env["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/share/kandinsky/plugins"))
        return dirs
    }

    /// Plugin libraries are named libkandinsky_plugin_*.so (or *.kdplugin).
    public static func isPluginFile(_ name: String) -> Bool {
        (name.hasPrefix("libkandinsky_plugin_") && name.hasSuffix(".so")) || name.hasSuffix(".kdplugin")
    }

    /// Loads every plugin library in `directories` except those in `skipping` (resolved paths). `willLoad` and
    /// `didLoad` bracket each library's load (dlopen, init, descriptors): a worker reports them so that its supervisor
    /// knows which library a crash during start-up came from.
    public func load(directories: [String], skipping: Set<String> = [], willLoad: (String) -> Void = { _ in },
                     didLoad: (String) -> Void = { _ in }) {
        var seen = Set<String>()
        for dir in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() where Self.isPluginFile(name) {
                let path = URL(fileURLWithPath: dir).appendingPathComponent(name).resolvingSymlinksInPath().path
                guard seen.insert(path).inserted, !skipping.contains(path) else { continue }
                willLoad(path)
                do { try load(library: path) } catch { warnings.append("skipping plugin \(path): \(error)") }
                didLoad(path)
            }
        }
    }

    public func load(library path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw DescriptorError.bad("cannot load: \(dlerror().map { String(cString: $0) } ?? "unknown error")")
        }
        // Never dlclose: see the type comment.
        guard let sym = dlsym(handle, KD_PLUGIN_ENTRY_SYMBOL) else {
            throw DescriptorError.bad("no \(KD_PLUGIN_ENTRY_SYMBOL) symbol")
        }
        let entryFn = unsafeBitCast(sym, to: kd_plugin_entry_fn.self)
        guard let entry = entryFn() else { throw DescriptorError.bad("\(KD_PLUGIN_ENTRY_SYMBOL) returned NULL") }
        guard
            let e: kd_plugin_entry_t = VersionedStruct.read(
                entry, minimum: ABI10Size.pluginEntry)
        else {
            throw DescriptorError.bad("entry table struct_size \(entry.pointee.struct_size) is below the 1.0 size")
        }
        // Any minor of our major loads: the header's size rules let older and newer minors read each other.
        guard e.abi.major == KD_ABI_MAJOR else {
            throw DescriptorError.bad(
                "built for plugin ABI \(e.abi.major).\(e.abi.minor); this host speaks \(KD_ABI_MAJOR).\(KD_ABI_MINOR)")
        }
        guard let initFn = e.`init`, let count = e.plugin_count, let descFn = e.plugin_descriptor, e.run != nil else {
            throw DescriptorError.bad("entry table is incomplete")
        }
        guard initFn(host) else { throw DescriptorError.bad("the plugin declined to initialise") }
        var specs: [PluginSpec] = []
        for i in 0..<count() {
            guard let d = descFn(i) else { throw DescriptorError.bad("descriptor \(i) is NULL") }
            specs.append(try PluginSpec(d, library: path, index: i))
        }
        for s in specs {
            let names = [s.id] + s.aliases
            if let clash = plugins.first(where: { p in names.contains { p.id == $0 || p.aliases.contains($0) } }) {
                warnings.append(
                    "skipping plugin \(s.id) in \(path): its name clashes with \(clash.id) from \(clash.library)")
                continue
            }
            plugins.append(s)
        }
        entries[path] = e
    }

    public func plugin(named name: String) -> PluginSpec? {
        plugins.first { $0.id == name || $0.aliases.contains(name) }
    }

    func entry(for spec: PluginSpec) -> kd_plugin_entry_t { entries[spec.library]! }
}
