// Folders that ship with kandinsky (the default model set, the web editor) and where a running binary finds them:
// named by an environment variable, installed under share/kandinsky beside bin/, or in the checkout the executable
// was built in. One rule for every such folder.
import Foundation

public enum ShippedFiles {
    /// Where the folder may be, in order: $`variable`; `share/kandinsky/<installed>` beside an installed `bin/`;
    /// `<checkout>` in the checkout the executable was built in (SwiftPM puts it at
    /// `.build/<triple>/release/kandinsky`, so the checkout is a few folders up).
    public static func candidates(
        variable: String, installed: String, checkout: String, executable: URL?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        var found: [String] = []
        if let named = environment[variable], !named.isEmpty { found.append((named as NSString).expandingTildeInPath) }
        if let executable = executable?.resolvingSymlinksInPath() {
            var folder = executable.deletingLastPathComponent()
            found.append(folder.deletingLastPathComponent().appendingPathComponent("share/kandinsky/" + installed).path)
            for _ in 0..<5 {
                folder.deleteLastPathComponent()
                found.append(folder.appendingPathComponent(checkout).path)
                if folder.path == "/" { break }
            }
        }
        return found
    }
}
