// Images by content address: an image's id is the SHA-256 of its bytes, its file images/ID.png (or .jpg) under
// --data. Ids are checked to be 64 hex digits before they name a file, so no request names a path.
import Digest
import Foundation
import ImageIO
import ImageProcessing

public enum ImageStoreError: Error, Equatable {
    case tooLarge(limit: Int)
    case unreadable(String)
}

public final class ImageStore: @unchecked Sendable {
    let folder: String
    let temporaryFolder: String
    let store: JobStore
    let maxBytes: Int

    public init(dataFolder: String, store: JobStore, maxBytes: Int) throws {
        folder = dataFolder + "/images"
        temporaryFolder = dataFolder + "/tmp"
        self.store = store
        self.maxBytes = maxBytes
        for path in [folder, temporaryFolder] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
    }

    /// Whether `id` can be an image id at all (64 lowercase hex digits).
    static func isImageID(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Checks and stores uploaded bytes: a PNG or JPEG the CLI would read (its pixel limit included).
    public func add(_ bytes: Data) throws -> JobStore.ImageRecord {
        guard bytes.count <= maxBytes else { throw ImageStoreError.tooLarge(limit: maxBytes) }
        let id = SHA256.hex(bytes)
        if let known = try store.image(id) { return known }
        let png = bytes.starts(with: [0x89, 0x50, 0x4E, 0x47])
        let name = id + (png ? ".png" : ".jpg")
        let staged = temporaryFolder + "/" + UUID().uuidString + (png ? ".png" : ".jpg")
        guard FileManager.default.createFile(atPath: staged, contents: bytes) else {
            throw ImageStoreError.unreadable("cannot write to \(temporaryFolder)")
        }
        defer { unlink(staged) }
        let pixels: (Int, Int)
        do {
            let image = try ImageFiles.read(staged)
            pixels = (image.width, image.height)
        } catch {
            // The message names our staging file; the client knows its upload as "the image".
            let why = "\(error)".replacingOccurrences(of: staged + ": ", with: "")
            throw ImageStoreError.unreadable(why)
        }
        return try adopt(staged, as: name, id: id, size: pixels, bytes: bytes.count)
    }

    /// Stores pixels made here (a mask converted from another convention) as a PNG, checked like an upload.
    public func add(_ image: PixelImage) throws -> JobStore.ImageRecord {
        let staged = temporaryFolder + "/" + UUID().uuidString + ".png"
        defer { unlink(staged) }
        try ImageFiles.write(image, to: staged)
        guard let bytes = FileManager.default.contents(atPath: staged) else {
            throw ImageStoreError.unreadable("cannot read back \(staged)")
        }
        return try add(bytes)
    }

    /// Moves a finished result file (written atomically by the worker) into the store.
    public func addResult(at path: String) throws -> JobStore.ImageRecord {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ImageStoreError.unreadable("the worker's result \(path) is missing")
        }
        let id = SHA256.hex(bytes)
        defer { unlink(path) }
        if let known = try store.image(id) { return known }
        let image = try ImageFiles.read(path)
        return try adopt(path, as: id + ".png", id: id, size: (image.width, image.height), bytes: bytes.count)
    }

    private func adopt(
        _ path: String, as name: String, id: String, size: (Int, Int), bytes: Int
    ) throws -> JobStore.ImageRecord {
        let target = folder + "/" + name
        // The file is complete on disk before the database names it.
        let descriptor = open(path, O_RDONLY)
        if descriptor >= 0 {
            fsync(descriptor)
            close(descriptor)
        }
        if rename(path, target) != 0 && !FileManager.default.fileExists(atPath: target) {
            throw ImageStoreError.unreadable("cannot move \(path) to \(target): \(String(cString: strerror(errno)))")
        }
        let record = JobStore.ImageRecord(id: id, file: name, width: size.0, height: size.1, bytes: bytes)
        try store.addImage(record)
        return record
    }

    /// The file of image `id`, or nil when there is no such image.
    public func path(of id: String) throws -> String? {
        guard Self.isImageID(id), let record = try store.image(id) else { return nil }
        return folder + "/" + record.file
    }
}
