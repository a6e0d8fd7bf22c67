// The durable queue: jobs and images in SQLite (GRDB) under --data. Every change is one transaction, so a crash
// or kill -9 leaves each job either before or after a change, never between.
import Foundation
import GRDB

public enum SubmitError: Error, Equatable {
    /// The queue holds `limit` queued jobs already.
    case queueFull(limit: Int)
}

public enum CancelResult: Equatable {
    case cancelled(Job)
    /// Running: the runner was asked to stop it.
    case stopping(Job)
    case ended(Job)
    case unknown
}

public final class JobStore: @unchecked Sendable {
    let database: DatabaseQueue

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE job (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        plugin TEXT NOT NULL,
                        params TEXT NOT NULL,
                        inputs TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        stage TEXT, step INTEGER, total INTEGER, seed INTEGER, error TEXT,
                        results TEXT NOT NULL DEFAULT '[]',
                        resolved_params TEXT,
                        idempotency_key TEXT UNIQUE,
                        created_at REAL NOT NULL, started_at REAL, finished_at REAL,
                        cancel_requested INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX job_state ON job(state, sequence);
                    CREATE TABLE image (
                        id TEXT PRIMARY KEY,
                        file TEXT NOT NULL,
                        width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,
                        created_at REAL NOT NULL
                    );
                    """)
        }
        try migrator.migrate(database)
    }

    // MARK: jobs

    /// Adds a job, or returns the one submitted before with the same idempotency key (created = false).
    public func submit(
        plugin: String, params: [String: String], inputs: [String: String], idempotencyKey: String?, maxQueued: Int
    ) throws -> (job: Job, created: Bool) {
        try database.write { db in
            if let key = idempotencyKey,
                let row = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE idempotency_key = ?", arguments: [key])
            {
                return (try Self.job(row), false)
            }
            let queued = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'queued'") ?? 0
            guard queued < maxQueued else { throw SubmitError.queueFull(limit: maxQueued) }
            var random = SystemRandomNumberGenerator()
            let id =
                "job_"
                + (0..<10).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }
                .joined()
            try db.execute(
                sql: """
                    INSERT INTO job (id, plugin, params, inputs, state, idempotency_key, created_at)
                    VALUES (?, ?, ?, ?, 'queued', ?, ?)
                    """,
                arguments: [
                    id, plugin, try Self.text(params), try Self.text(inputs), idempotencyKey,
                    Date().timeIntervalSince1970,
                ])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id])!
            return (try Self.job(row), true)
        }
    }

    public func job(_ id: String) throws -> Job? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.job)
        }
    }

    /// Jobs after `cursor` (a sequence number) in submission order, at most `limit`.
    public func list(after cursor: Int64, limit: Int) throws -> [Job] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM job WHERE sequence > ? ORDER BY sequence LIMIT ?", arguments: [cursor, limit]
            ).map(Self.job)
        }
    }

    /// How many jobs are ahead of a queued one (the running job included); nil when it is not queued.
    public func position(of job: Job) throws -> Int? {
        guard job.state == .queued else { return nil }
        return try database.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM job WHERE (state = 'queued' AND sequence < ?) OR state = 'running'",
                arguments: [job.sequence])
        }
    }

    /// The oldest queued job, now running (its attempt counted); nil when none waits.
    public func claimNext() throws -> Job? {
        try database.write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM job WHERE state = 'queued' ORDER BY sequence LIMIT 1")
            else { return nil }
            let id: String = row["id"]
            try db.execute(
                sql: """
                    UPDATE job SET state = 'running', attempts = attempts + 1, started_at = ?, stage = NULL,
                    step = NULL, total = NULL WHERE id = ?
                    """,
                arguments: [Date().timeIntervalSince1970, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.job)
        }
    }

    public func progress(_ id: String, stage: String, step: Int, total: Int) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE job SET stage = ?, step = ?, total = ? WHERE id = ?", arguments: [stage, step, total, id])
        }
    }

    /// Ends a running job.
    @discardableResult
    public func finish(
        _ id: String, state: JobState, error: String? = nil, results: [String] = [],
        resolvedParams: [String: String]? = nil
    ) throws -> Job? {
        let seed = resolvedParams?["seed"].flatMap { Int64($0) }
        return try database.write { db in
            try db.execute(
                sql: """
                    UPDATE job SET state = ?, error = ?, results = ?, resolved_params = ?, seed = ?, finished_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    state.rawValue, error, try Self.text(results), try resolvedParams.map(Self.text), seed,
                    Date().timeIntervalSince1970, id,
                ])
            return try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.job)
        }
    }

    /// Puts a running job back at its place in the queue without counting the attempt (a graceful shutdown).
    public func requeue(_ id: String) throws {
        try database.write { db in
            try db.execute(
                sql: """
                    UPDATE job SET state = 'queued', attempts = MAX(attempts - 1, 0), stage = NULL, step = NULL,
                    total = NULL, started_at = NULL WHERE id = ? AND state = 'running'
                    """,
                arguments: [id])
        }
    }

    public func cancel(_ id: String) throws -> CancelResult {
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]) else {
                return .unknown
            }
            let job = try Self.job(row)
            switch job.state {
            case .queued:
                try db.execute(
                    sql: "UPDATE job SET state = 'cancelled', finished_at = ? WHERE id = ?",
                    arguments: [Date().timeIntervalSince1970, id])
                let updated = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id])!
                return .cancelled(try Self.job(updated))
            case .running:
                try db.execute(sql: "UPDATE job SET cancel_requested = 1 WHERE id = ?", arguments: [id])
                return .stopping(job)
            default:
                return .ended(job)
            }
        }
    }

    /// After a start: a job that was running when the server died runs once more; one that was already on its
    /// second attempt is failed, so a job that kills the server cannot loop. Returns the jobs it failed.
    public func recover() throws -> [Job] {
        try database.write { db in
            let interrupted = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state = 'running'").map(Self.job)
            var failed: [Job] = []
            for job in interrupted {
                if job.attempts >= 2 || job.cancelRequested {
                    let reason =
                        job.cancelRequested
                        ? "cancelled: the server stopped while the job was being cancelled"
                        : "the server stopped while this job ran, twice (attempt \(job.attempts)); not retried again"
                    try db.execute(
                        sql: "UPDATE job SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                        arguments: [
                            job.cancelRequested ? "cancelled" : "failed", reason, Date().timeIntervalSince1970,
                            job.id,
                        ])
                    failed.append(job)
                } else {
                    try db.execute(
                        sql: "UPDATE job SET state = 'queued', stage = NULL, step = NULL, total = NULL WHERE id = ?",
                        arguments: [job.id])
                }
            }
            return failed
        }
    }

    /// Jobs by state, for /metrics.
    public func counts() throws -> [JobState: Int] {
        try database.read { db in
            var out: [JobState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { out[state] = row["n"] }
            }
            return out
        }
    }

    // MARK: images

    public struct ImageRecord: Sendable, Equatable {
        public var id: String, file: String, width: Int, height: Int, bytes: Int
    }

    public func addImage(_ record: ImageRecord) throws {
        try database.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO image (id, file, width, height, bytes, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    record.id, record.file, record.width, record.height, record.bytes,
                    Date().timeIntervalSince1970,
                ])
        }
    }

    public func image(_ id: String) throws -> ImageRecord? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM image WHERE id = ?", arguments: [id]).map {
                ImageRecord(
                    id: $0["id"], file: $0["file"], width: $0["width"], height: $0["height"], bytes: $0["bytes"])
            }
        }
    }

    // MARK: rows

    static func text<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ text: String?, as type: T.Type) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static func job(_ row: Row) throws -> Job {
        Job(
            id: row["id"], sequence: row["sequence"], plugin: row["plugin"],
            params: try decode(row["params"], as: [String: String].self) ?? [:],
            inputs: try decode(row["inputs"], as: [String: String].self) ?? [:],
            state: JobState(rawValue: row["state"]) ?? .failed, attempts: row["attempts"], stage: row["stage"],
            step: row["step"], total: row["total"], seed: row["seed"], error: row["error"],
            results: try decode(row["results"], as: [String].self) ?? [],
            resolvedParams: try decode(row["resolved_params"], as: [String: String].self),
            idempotencyKey: row["idempotency_key"], createdAt: row["created_at"], startedAt: row["started_at"],
            finishedAt: row["finished_at"], cancelRequested: (row["cancel_requested"] as Int) != 0)
    }
}
