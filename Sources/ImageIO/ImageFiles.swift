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
    public static func read(_ path: String) throws -> PixelImage {
        guard FileManager.default.fileExists(atPath: path) else { throw ImageIOError.missing(path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw ImageIOError.unreadable(path, "permission denied or not a file") }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try PNGCodec.read(path: path, data: data) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try JPEGCodec.read(path: path, data: data) }
        if data.isEmpty { throw ImageIOError.unreadable(path, "the file is empty") }
        throw ImageIOError.unsupported(path, "not a PNG or JPEG file")
    }

    /// Writes PNG (with `text` as tEXt chunks) or JPEG (quality 95) chosen by the extension, via a temporary file
    /// in the same folder renamed into place.
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

    public static func writeAtomically(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw ImageIOError.writeFailed(path, "cannot create a file in \(dir.isEmpty ? "." : dir)")
        }
        if rename(tmp, path) != 0 {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw ImageIOError.writeFailed(path, why)
        }
    }
}
