// Reading images by content (PNG or JPEG signature), writing by extension, atomically: the output appears
// complete or not at all, and an existing file survives a failed write.
import Foundation
import ImageProcessing

public enum ImageFiles {
    /// The environment variable that overrides `maxPixels`.
    public static let maxPixelsVariable = "KANDINSKY_MAX_IMAGE_PIXELS"

    /// The most pixels an input may declare, checked from its header before anything is decoded: Pillow's rule
    /// (PIL/Image.py: MAX_IMAGE_PIXELS = 89,478,485 warns, twice that raises DecompressionBombError), here the error
    /// at twice, settable through KANDINSKY_MAX_IMAGE_PIXELS.
    public static var maxPixels: Int {
        ProcessInfo.processInfo.environment[maxPixelsVariable].flatMap { Int($0) }.map { max($0, 1) } ?? 2 * 89_478_485
    }

    /// Above this many pixels (half of `maxPixels`, Pillow's warning tier) an input is read, with a warning.
    public static var warningPixels: Int { maxPixels / 2 }

    /// The warning for an input of `image`'s size read from `path`, or nil below `warningPixels`.
    public static func sizeWarning(_ image: PixelImage, path: String) -> String? {
        let pixels = image.width * image.height
        guard pixels > warningPixels else { return nil }
        return "warning: \(path) has \(pixels) pixels (\(image.width)x\(image.height)), more than \(warningPixels): "
            + "it costs memory and time (the limit, \(maxPixels), is set by \(maxPixelsVariable))"
    }
    public static func read(_ path: String) throws -> PixelImage {
        guard FileManager.default.fileExists(atPath: path) else { throw ImageIOError.missing(path) }
        // Said before reading: Foundation's contents(atPath:) leaks its 4 KB buffer on an empty file (found by
        // tools/fuzz.sh under LeakSanitizer).
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if size == 0 { throw ImageIOError.unreadable(path, "the file is empty") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageIOError.unreadable(path, "permission denied or not a file")
        }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try PNGCodec.read(path: path, data: data) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try JPEGCodec.read(path: path, data: data) }
        throw ImageIOError.unsupported(path, "not a PNG or JPEG file")
    }

    /// Writes PNG (with `text` as tEXt chunks, iTXt beyond Latin-1) or JPEG (quality 95) chosen by the extension,
    /// via a temporary file in the same folder renamed into place.
    public static func write(_ image: PixelImage, to path: String, text: [(String, String)] = []) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        let data: Data
        switch ext {
        case "png": data = try PNGCodec.encode(image, text: text)
        case "jpg", "jpeg": data = try JPEGCodec.encode(image, quality: 95)
        default: throw ImageIOError.writeFailed(path, "unknown extension '.\(ext)'; use .png, .jpg or .jpeg")
        }
        try writeAtomically(data, to: path)
    }

    /// The hidden file an output is written to before it is renamed into place: `.NAME.tmp-PID` beside it. Whoever
    /// stops a writing process by force (a supervisor) removes it by this name.
    public static func temporaryPath(for path: String, processID: Int32 = getpid()) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let name = ".\((path as NSString).lastPathComponent).tmp-\(processID)"
        return ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(name)
    }

    /// Writes `data` to a temporary file and renames it over `path`: readers see the old file or the new one, never
    /// part of one. A file it replaces keeps its permission bits (and owner, where this process may set it). SIGINT,
    /// SIGTERM and SIGHUP wait until the rename is done (they only set a flag here, but a default action would leave
    /// the temporary file behind).
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = temporaryPath(for: path)
        var blocked = sigset_t()
        var previous = sigset_t()
        sigemptyset(&blocked)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&blocked, signalNumber) }
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw ImageIOError.writeFailed(path, "cannot create a file in \(dir.isEmpty ? "." : dir)")
        }
        var existing = stat()
        if stat(path, &existing) == 0 {
            chmod(tmp, existing.st_mode & 0o7777)
            _ = chown(tmp, existing.st_uid, existing.st_gid)
        }
        if rename(tmp, path) != 0 {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw ImageIOError.writeFailed(path, why)
        }
    }
}
