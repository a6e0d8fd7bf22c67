// A read-only memory mapping of a whole file; weights are read straight from the page cache.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { throw CheckpointError.fileMissing(path: path) }
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError.unreadable(path: path,
                                                                          reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CheckpointError.unreadable(path: path,
            reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw CheckpointError.unreadable(path: path,
                                                                             reason: String(cString: strerror(errno))) }
        base = UnsafeRawPointer(p)
        Self.lock.lock()
        Self.live.removeAll { $0.file == nil }
        Self.live.append(WeakMapping(file: self))
        Self.lock.unlock()
    }

    private struct WeakMapping { weak var file: MappedFile? }
    nonisolated(unsafe) private static var live: [WeakMapping] = []
    private static let lock = NSLock()

    /// Hands the resident pages of every mapping under `folder` back to the kernel. The mappings are read-only and
    /// never written, so a later read faults the same bytes back in, from the page cache while it still holds them.
    /// The model server calls this for a model part between its uses (the prior's towers while the decoder runs, the
    /// UNet while the MoVQ decodes), so a process's resident memory is the model part at work, not every file it
    /// has mapped.
    public static func releaseResidentPages(under folder: String) {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        lock.lock()
        let files = live.compactMap(\.file).filter { $0.path.hasPrefix(prefix) && $0.size > 0 }
        lock.unlock()
        for f in files { madvise(UnsafeMutableRawPointer(mutating: f.base), f.size, MADV_DONTNEED) }
    }

    deinit {
        if size == 0 {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        }
    }
}
