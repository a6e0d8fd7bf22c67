// Turns a model reference into a folder: a path to a diffusers-layout folder, or a hub id ("ORG/NAME") found in
// the local Hugging Face cache. Nothing is ever downloaded.
import Foundation

public enum ModelResolver {
    /// Cache roots in Hugging Face's order: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub.
    public static func cacheRoots(environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var roots: [String] = []
        if let c = env["HF_HUB_CACHE"], !c.isEmpty { roots.append(c) }
        if let h = env["HF_HOME"], !h.isEmpty { roots.append((h as NSString).appendingPathComponent("hub")) }
        let home = env["HOME"] ?? NSHomeDirectory()
        roots.append((home as NSString).appendingPathComponent(".cache/huggingface/hub"))
        return roots
    }

    public static func isHubId(_ ref: String) -> Bool {
        let parts = ref.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && !ref.hasPrefix(".") && !ref.hasPrefix("/") && !ref.hasPrefix("~")
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } }
    }

    /// The folder for `reference`; throws a message saying where it looked and how to fetch it.
    public static func resolve(_ reference: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let expanded = (reference as NSString).expandingTildeInPath
        if fm.fileExists(atPath: expanded, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ModelError.notAFolder(reference) }
            return expanded
        }
        guard isHubId(reference) else { throw ModelError.missingFolder(reference) }
        let name = "models--" + reference.replacingOccurrences(of: "/", with: "--")
        var searched: [String] = []
        for root in cacheRoots(environment: env) {
            let repo = (root as NSString).appendingPathComponent(name)
            searched.append(repo)
            let snapshots = (repo as NSString).appendingPathComponent("snapshots")
            // refs/main names the snapshot the hub client would use; otherwise the newest snapshot.
            if let ref = try? String(contentsOfFile: (repo as NSString).appendingPathComponent("refs/main"), encoding: .utf8) {
                let snap = (snapshots as NSString).appendingPathComponent(ref.trimmingCharacters(in: .whitespacesAndNewlines))
                if fm.fileExists(atPath: snap) { return snap }
            }
            let entries = ((try? fm.contentsOfDirectory(atPath: snapshots)) ?? []).map { (snapshots as NSString).appendingPathComponent($0) }
            let newest = entries.max { a, b in
                let da = (try? fm.attributesOfItem(atPath: a)[.modificationDate] as? Date) ?? .distantPast
                let db = (try? fm.attributesOfItem(atPath: b)[.modificationDate] as? Date) ?? .distantPast
                return da < db
            }
            if let newest { return newest }
        }
        throw ModelError.notInCache(reference, searched)
    }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case notAFolder(String)
    case missingFolder(String)
    case notInCache(String, [String])
    case wrongKind(String, String)

    public var description: String {
        switch self {
        case .notAFolder(let r): return "\(r): is a file, not a model folder"
        case .missingFolder(let r): return "\(r): model folder not found"
        case .notInCache(let r, let searched):
            return "model '\(r)' is not in the local Hugging Face cache (looked in \(searched.joined(separator: ", "))); kandinsky never downloads. Fetch it where there is network access with `huggingface-cli download \(r)` (or `python -c \"from huggingface_hub import snapshot_download; snapshot_download('\(r)')\"`), then copy the cache here or pass the folder's path"
        case .wrongKind(let r, let why): return "\(r): \(why)"
        }
    }
}
