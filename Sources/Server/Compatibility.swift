// What the compatibility routes (AUTOMATIC1111's /sdapi/v1, OpenAI's Images API) share: their request fields read
// with errors that name the field, images given inline, several images queued as jobs with seeds seed, seed + 1, ...,
// and the wait for those jobs. They run on the same queue and worker as /v1/jobs.
import Foundation
import PluginSchema

/// A foreign request's fields: typed reads that name the field in their errors, a record of what was read, so what
/// has no equivalent here can be reported back. A JSON null counts as absent. Numbers may also come as text (form
/// fields of a multipart request are all text).
struct CompatibilityFields {
    let body: [String: Any]
    private(set) var read: Set<String> = []

    init(_ body: [String: Any]) {
        self.body = body
    }

    mutating func value(_ key: String) -> Any? {
        read.insert(key)
        guard let value = body[key], !(value is NSNull) else { return nil }
        return value
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value as? String else { throw Self.invalid(key, "text") }
        return text
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        if let number = value as? NSNumber, !Self.isBoolean(number) { return number.doubleValue }
        if let text = value as? String, let number = Double(text.trimmingCharacters(in: .whitespaces)) {
            return number
        }
        throw Self.invalid(key, "a number")
    }

    mutating func integer(_ key: String) throws -> Int64? {
        guard let number = try double(key) else { return nil }
        guard number.rounded() == number, abs(number) < 9.0e15 else { throw Self.invalid(key, "a whole number") }
        return Int64(number)
    }

    /// true/false, or a number (0 = false), as A1111's clients send either.
    mutating func boolean(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        if let number = value as? NSNumber { return number.doubleValue != 0 }
        if let text = value as? String, ["true", "false", "1", "0"].contains(text.lowercased()) {
            return text.lowercased() == "true" || text == "1"
        }
        throw Self.invalid(key, "true or false")
    }

    /// Unread fields that name a parameter of `plugin`: our own names pass straight through (a client may send
    /// `prior_num_inference_steps`, which neither foreign API has).
    mutating func pluginParams(of plugin: PluginSpec) throws -> [String: String] {
        var passed: [String: Any] = [:]
        for param in plugin.params where !read.contains(param.key) {
            if let value = value(param.key) { passed[param.key] = value }
        }
        return try Routes.textParams(passed)
    }

    /// Fields given (not null) that nothing read: accepted, without effect, and reported to the client.
    var ignored: [String] {
        body.keys.filter { !read.contains($0) && !(body[$0] is NSNull) }.sorted()
    }

    static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    static func invalid(_ key: String, _ expected: String) -> APIError {
        APIError(.badRequest, "\(key): expected \(expected)", field: key)
    }
}

extension Routes {
    /// The plugin with this id (the compatibility routes name ours directly).
    func plugin(_ id: String) throws -> PluginSpec {
        guard let plugin = runner.plugins.first(where: { $0.id == id }) else {
            throw APIError(.serviceUnavailable, "the plugin '\(id)' is not loaded (GET /v1/plugins lists them)")
        }
        return plugin
    }

    /// Stores an image given as base64 text (a `data:image/...;base64,` prefix allowed); `field` names it in errors.
    func storeBase64Image(_ value: Any, field: String) throws -> JobStore.ImageRecord {
        guard var text = value as? String else {
            throw APIError(.badRequest, "\(field): expected a base64 PNG or JPEG", field: field)
        }
        if text.hasPrefix("data:"), let comma = text.firstIndex(of: ",") {
            text = String(text[text.index(after: comma)...])
        }
        guard let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters), !bytes.isEmpty else {
            throw APIError(.badRequest, "\(field): not base64 text", field: field)
        }
        return try storeImage(bytes, field: field)
    }

    /// Stores uploaded bytes as an image; errors name `field` (the request's part or field that held them).
    func storeImage(_ bytes: Data, field: String) throws -> JobStore.ImageRecord {
        do {
            return try storeImage(bytes)
        } catch let error as APIError {
            throw APIError(error.status, "\(field): \(error.message)", field: field)
        }
    }

    /// Base64 text of a stored image's bytes (results are PNGs with their parameters).
    func base64Image(_ id: String) throws -> String {
        guard let path = try images.path(of: id), let bytes = FileManager.default.contents(atPath: path) else {
            throw APIError(.internalServerError, "the result image \(id) is missing from the store")
        }
        return bytes.base64EncodedString()
    }

    /// A seed as A1111 draws one for -1: 32 bits, so seed + k stays in every client's range.
    static func drawSeed() -> Int64 { Int64.random(in: 0..<(1 << 32)) }

    /// Queues `count` jobs that differ only in their seed (`seed` + k; a negative `seed` draws the first): all of
    /// them or none (jobs queued before a refusal, a full queue say, are cancelled again).
    func enqueueSeries(
        _ plugin: PluginSpec, params: [String: String], inputs: [String: String], count: Int, seed: Int64
    ) throws -> [Job] {
        let firstSeed = seed < 0 ? Self.drawSeed() : seed
        var jobs: [Job] = []
        do {
            for index in 0..<count {
                var jobParams = params
                jobParams["seed"] = String(firstSeed + Int64(index))
                jobs.append(try enqueue(plugin.id, params: jobParams, inputs: inputs, idempotencyKey: nil).0)
            }
        } catch {
            for job in jobs { _ = try? store.cancel(job.id) }
            throw error
        }
        return jobs
    }

    /// Waits until each job has ended (through its events, not by polling) and returns their final records.
    func waitForEnd(_ ids: [String]) async throws -> [Job] {
        var ended: [Job] = []
        for id in ids {
            // The backlog is not needed: the job's record says whether it has ended.
            let (_, stream, cancel) = events.subscribe(id, after: 0)
            defer { cancel() }
            // Read after subscribing: a job that ends in between is seen here, or its final event is in the stream.
            if let job = try store.job(id), job.state.hasEnded {
                ended.append(job)
                continue
            }
            for await event in stream where Self.isFinal(event) { break }
            guard let job = try store.job(id) else { throw APIError(.internalServerError, "job \(id) vanished") }
            ended.append(job)
        }
        return ended
    }

    /// Width and height of a stored image.
    func imageSize(_ id: String) -> (width: Int, height: Int)? {
        guard let record = try? store.image(id) else { return nil }
        return (record.width, record.height)
    }
}
