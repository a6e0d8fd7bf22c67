// How much memory a run may still take: what the kernel reports as available (MemAvailable counts the page cache it
// can drop, so mapped weight files do not make the machine look full), capped by the cgroup's limit where the
// process runs in one (a container, a Slurm job with memory enforcement).
import Foundation

public enum SystemMemory {
    /// Bytes available now; 0 when nothing can be read (then batches stay at one image).
    public static func availableBytes() -> Int {
        var available = meminfoAvailable() ?? 0
        if let limit = number(at: "/sys/fs/cgroup/memory.max"), let used = number(at: "/sys/fs/cgroup/memory.current") {
            available = min(available, max(limit - used, 0))
        }
        return available
    }

    static func meminfoAvailable() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    /// A file holding one number ("max", an unlimited cgroup, reads as nil).
    static func number(at path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
