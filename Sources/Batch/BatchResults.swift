// What a batch has done, kept in its folder: results/shard-I-of-N.jsonl, one record a line, appended and synced per
// item (a killed shard loses at most the item it was on), and batch.json, the items of the latest manifest (so
// `kandinsky batch status` can say what is missing). Records of every shard file are merged when read.
import Digest
import Foundation

public struct BatchRecord: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable { case done, failed }
    public let item: Int
    public let output: String
    public let state: State
    public let fingerprint: String
    /// The item's digest (done): SHA-256 of its output file; for an item of several images, SHA-256 of their
    /// SHA-256s, one hex digest a line in image order (BatchFolder.digest).
    public var sha256: String?
    public var error: String?
    public var seconds: Double?
    public let shard: String
    public let time: String

    public init(
        item: BatchItem, state: State, shard: String, sha256: String? = nil, error: String? = nil,
        seconds: Double? = nil
    ) {
        self.item = item.index
        output = item.output
        self.state = state
        fingerprint = item.fingerprint
        self.sha256 = sha256
        self.error = error
        self.seconds = seconds
        self.shard = shard
        time = ISO8601DateFormatter().string(from: Date())
    }
}

/// The manifest's items as the folder remembers them (batch.json).
public struct BatchIndex: Codable, Equatable, Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public let item: Int
        public let output: String
        /// Every file of the item (several for num_images above 1); absent in a batch.json of one file per item.
        public let outputs: [String]?
        public let fingerprint: String

        var files: [String] { outputs ?? [output] }
    }
    public let items: [Entry]

    public init(_ items: [BatchItem]) {
        self.items = items.map {
            Entry(
                item: $0.index, output: $0.output, outputs: $0.outputs.count > 1 ? $0.outputs : nil,
                fingerprint: $0.fingerprint)
        }
    }
}

public final class BatchFolder: @unchecked Sendable {
    public let path: String
    private var handle: FileHandle?

    public init(_ path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path + "/results", withIntermediateDirectories: true)
    }

    /// Writes batch.json for these items (atomically: shards of one manifest write the same bytes).
    public func remember(_ items: [BatchItem]) throws {
        let data = try JSONEncoder.sorted.encode(BatchIndex(items))
        let staged = path + "/.batch.json.\(getpid())"
        guard FileManager.default.createFile(atPath: staged, contents: data) else {
            throw BatchProblem("\(path): cannot write batch.json")
        }
        guard rename(staged, path + "/batch.json") == 0 else {
            unlink(staged)
            throw BatchProblem("\(path)/batch.json: \(String(cString: strerror(errno)))")
        }
    }

    public func index() throws -> BatchIndex {
        guard let data = FileManager.default.contents(atPath: path + "/batch.json") else {
            throw BatchProblem("\(path) holds no batch (no batch.json): run kandinsky batch MANIFEST --out \(path)")
        }
        return try JSONDecoder().decode(BatchIndex.self, from: data)
    }

    /// Opens this shard's results file for appending.
    public func openShard(_ shard: String) throws {
        let file = path + "/results/shard-\(shard).jsonl"
        if !FileManager.default.fileExists(atPath: file) {
            _ = FileManager.default.createFile(atPath: file, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: file) else { throw BatchProblem("\(file): cannot open") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    /// Appends one record and syncs it to disk before the next item starts.
    public func append(_ record: BatchRecord) throws {
        guard let handle else { throw BatchProblem("no shard results file is open") }
        var line = try JSONEncoder.sorted.encode(record)
        line.append(0x0A)
        handle.write(line)
        handle.synchronizeFile()
    }

    /// Every record of every shard file, in file order (a torn last line of a killed shard is passed over).
    public func records() -> [BatchRecord] {
        let folder = path + "/results"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.hasSuffix(".jsonl")
        }
        var records: [BatchRecord] = []
        for file in files.sorted() {
            guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { continue }
            for line in data.split(separator: 0x0A) {
                if let record = try? JSONDecoder().decode(BatchRecord.self, from: Data(line)) { records.append(record) }
            }
        }
        return records
    }

    /// The digest of an item's files as they are now (see BatchRecord.sha256); nil when one is missing.
    public func digest(of files: [String]) -> String? {
        var digests: [String] = []
        for file in files {
            guard let bytes = FileManager.default.contents(atPath: path + "/" + file) else { return nil }
            digests.append(SHA256.hex(bytes))
        }
        return files.count == 1 ? digests[0] : SHA256.hex(Array(digests.joined(separator: "\n").utf8))
    }

    /// Whether `item` is done: a done record with its fingerprint, and its output files with the recorded digest.
    public func isDone(_ item: BatchItem, records: [BatchRecord]) -> Bool {
        guard let digest = digest(of: item.outputs) else { return false }
        return records.contains { $0.state == .done && $0.fingerprint == item.fingerprint && $0.sha256 == digest }
    }

    public enum ItemStatus: Equatable, Sendable {
        case done
        case failed(String)
        case missing
    }

    /// Each remembered item's status: done (as isDone), failed with the latest reason, or missing.
    public func status() throws -> [(entry: BatchIndex.Entry, status: ItemStatus)] {
        let records = records()
        return try index().items.map { entry in
            let mine = records.filter { $0.fingerprint == entry.fingerprint }
            if let digest = digest(of: entry.files),
                mine.contains(where: { $0.state == .done && $0.sha256 == digest })
            {
                return (entry, .done)
            }
            if let failure = mine.last(where: { $0.state == .failed }) {
                return (entry, .failed(failure.error ?? "no reason recorded"))
            }
            return (entry, .missing)
        }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
