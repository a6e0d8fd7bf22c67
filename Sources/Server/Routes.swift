// The HTTP API (docs/openapi.json describes every route): plugins, images, jobs and their events, health and
// metrics. Handlers check what they are given against the plugin's own schema before anything is queued.
import Foundation
import HTTPTypes
import Hummingbird
import PluginSchema

struct Routes: Sendable {
    let store: JobStore
    let images: ImageStore
    let events: JobEvents
    let runner: JobRunner
    let configuration: ServerConfiguration

    func register(on router: RecordingRouter) {
        router.get("/healthz") { _, _ in jsonResponse(["status": "ok"]) }
        router.get("/metrics") { _, _ in try metrics() }
        router.get("/v1/plugins") { _, _ in plugins() }
        router.post("/v1/images") { request, _ in try await uploadImage(request) }
        router.get("/v1/images/:id") { _, context in try image(context.parameters.get("id") ?? "") }
        router.post("/v1/jobs") { request, _ in try await submit(request) }
        router.get("/v1/jobs") { request, _ in try listJobs(request) }
        router.get("/v1/jobs/:id") { _, context in try jobView(context.parameters.get("id") ?? "") }
        router.delete("/v1/jobs/:id") { _, context in try cancel(context.parameters.get("id") ?? "") }
        router.get("/v1/jobs/:id/events") { request, context in
            try eventStream(context.parameters.get("id") ?? "", request: request)
        }
    }

    // MARK: plugins

    func plugins() -> Response {
        jsonResponse(["plugins": runner.plugins.map(Self.schema)])
    }

    /// A plugin's schema as the API shows it.
    static func schema(_ plugin: PluginSpec) -> [String: Any] {
        [
            "id": plugin.id, "name": plugin.name, "version": plugin.version, "description": plugin.description,
            "aliases": plugin.aliases,
            "inputs": plugin.inputs.map { input -> [String: Any] in
                [
                    "key": input.key, "kind": input.kind.rawValue, "optional": input.optional,
                    "repeated": input.repeated, "help": input.help,
                ]
            },
            "params": plugin.params.map { param -> [String: Any] in
                var out: [String: Any] = [
                    "key": param.key, "type": param.kind.rawValue, "help": param.help, "optional": param.optional,
                    "model": param.isModel,
                ]
                if [.int, .float, .seed, .floatList].contains(param.kind) {
                    out["minimum"] = param.min
                    out["maximum"] = param.max
                }
                out["default"] = param.defaultText
                return out
            },
        ]
    }

    // MARK: images

    func uploadImage(_ request: Request) async throws -> Response {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: configuration.maxUploadBytes)
        } catch {
            throw APIError(.contentTooLarge, "the image is larger than \(configuration.maxUploadBytes) bytes")
        }
        let record = try storeImage(Data(buffer.readableBytesView))
        return jsonResponse(Self.imageView(record), status: .created)
    }

    func storeImage(_ bytes: Data) throws -> JobStore.ImageRecord {
        do {
            return try images.add(bytes)
        } catch ImageStoreError.tooLarge(let limit) {
            throw APIError(.contentTooLarge, "the image is larger than \(limit) bytes")
        } catch ImageStoreError.unreadable(let why) {
            throw APIError(.unprocessableContent, "the image cannot be read: \(why)", field: "image")
        }
    }

    static func imageView(_ record: JobStore.ImageRecord) -> [String: Any] {
        ["id": record.id, "width": record.width, "height": record.height, "bytes": record.bytes]
    }

    func image(_ id: String) throws -> Response {
        guard let path = try images.path(of: id), let bytes = FileManager.default.contents(atPath: path) else {
            throw APIError(.notFound, "no image \(id)")
        }
        let type = path.hasSuffix(".png") ? "image/png" : "image/jpeg"
        return Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=31536000, immutable", .eTag: "\"\(id)\""],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // MARK: jobs

    func submit(_ request: Request) async throws -> Response {
        let body = try await jsonBody(request, limit: configuration.maxRequestBytes)
        guard let pluginName = body["plugin"] as? String else {
            throw APIError(.badRequest, "'plugin' (a plugin id) is required", field: "plugin")
        }
        let params = try Self.textParams(body["params"] ?? [String: Any]())
        guard let inputs = (body["inputs"] ?? [String: String]()) as? [String: String] else {
            throw APIError(.badRequest, "'inputs' must map input names to image ids", field: "inputs")
        }
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        let (job, created) = try enqueue(pluginName, params: params, inputs: inputs, idempotencyKey: key)
        var view = job.view(position: try store.position(of: job), eta: nil)
        view["created"] = created
        var response = jsonResponse(view, status: created ? .accepted : .ok)
        response.headers[.location] = "/v1/jobs/\(job.id)"
        return response
    }

    /// Checks a job against its plugin's schema and queues it (the compatibility routes share this).
    func enqueue(
        _ pluginName: String, params: [String: String], inputs: [String: String], idempotencyKey: String?
    ) throws -> (Job, Bool) {
        if let key = idempotencyKey, key.count > 255 {
            throw APIError(.badRequest, "Idempotency-Key is longer than 255 characters")
        }
        guard let plugin = runner.plugins.first(where: { $0.id == pluginName || $0.aliases.contains(pluginName) })
        else {
            let names = runner.plugins.map(\.id)
            let suggestion = closestName(pluginName, in: names).map { "; did you mean '\($0)'?" } ?? ""
            throw APIError(
                .unprocessableContent, "unknown plugin '\(pluginName)'\(suggestion) (GET /v1/plugins lists them)",
                field: "plugin")
        }
        do {
            _ = try plugin.resolve(params, randomSeed: { 0 })
            try plugin.checkInputs(Array(inputs.keys))
        } catch let error as ParamError {
            throw APIError(.unprocessableContent, error.description, field: Self.field(of: error))
        }
        for (key, id) in inputs where try images.path(of: id) == nil {
            throw APIError(.unprocessableContent, "input '\(key)': no image \(id) (POST /v1/images first)", field: key)
        }
        do {
            let (job, created) = try store.submit(
                plugin: plugin.id, params: params, inputs: inputs, idempotencyKey: idempotencyKey,
                maxQueued: configuration.maxQueuedJobs)
            if created {
                runner.publishState(job.id)
                runner.notify()
            }
            return (job, created)
        } catch SubmitError.queueFull(let limit) {
            throw APIError(
                .tooManyRequests, "the queue is full (\(limit) jobs waiting); try again later",
                headers: [.retryAfter: "\(configuration.retryAfterSeconds)"])
        }
    }

    static func field(of error: ParamError) -> String {
        switch error {
        case .invalid(let key, _, _), .unknown(let key, _, _), .missingInput(let key, _), .missingParam(let key, _),
            .unknownInput(let key, _):
            return key
        }
    }

    /// JSON parameter values as the schema's text: numbers, booleans, strings and lists of numbers.
    static func textParams(_ value: Any) throws -> [String: String] {
        guard let object = value as? [String: Any] else {
            throw APIError(.badRequest, "'params' must be an object", field: "params")
        }
        var out: [String: String] = [:]
        for (key, value) in object {
            if let text = value as? String {
                out[key] = text
            } else if let number = value as? NSNumber {
                // JSONSerialization gives true/false as NSNumbers of type "c" (char); JSON numbers are never that.
                if String(cString: number.objCType) == "c" {
                    out[key] = number.boolValue ? "true" : "false"
                } else {
                    out[key] = number.stringValue
                }
            } else if let list = value as? [NSNumber] {
                out[key] = "[" + list.map(\.stringValue).joined(separator: ", ") + "]"
            } else if value is NSNull {
                continue
            } else {
                throw APIError(.badRequest, "parameter \(key): expected a number, string, boolean or list", field: key)
            }
        }
        return out
    }

    func jobView(_ id: String) throws -> Response {
        guard let job = try store.job(id) else { throw APIError(.notFound, "no job \(id)") }
        return jsonResponse(view(job))
    }

    func view(_ job: Job) -> [String: Any] {
        job.view(position: try? store.position(of: job), eta: job.state == .running ? runner.eta(of: job.id) : nil)
    }

    func listJobs(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        var cursor: Int64 = 0
        if let text = query.get("cursor") {
            guard let value = Int64(text), value >= 0 else {
                throw APIError(
                    .badRequest, "cursor must be a number from a previous page's next_cursor", field: "cursor")
            }
            cursor = value
        }
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...500).contains(value) else {
                throw APIError(.badRequest, "limit must be a whole number from 1 to 500", field: "limit")
            }
            limit = value
        }
        let jobs = try store.list(after: cursor, limit: limit)
        var out: [String: Any] = ["jobs": jobs.map(view)]
        if jobs.count == limit, let last = jobs.last { out["next_cursor"] = String(last.sequence) }
        return jsonResponse(out)
    }

    func cancel(_ id: String) throws -> Response {
        switch try store.cancel(id) {
        case .unknown:
            throw APIError(.notFound, "no job \(id)")
        case .ended(let job):
            throw APIError(.conflict, "job \(id) has already ended (\(job.state.rawValue))")
        case .cancelled(let job):
            runner.publishState(job.id)
            return jsonResponse(view(job))
        case .stopping(let job):
            runner.stopIfRunning(job.id)
            return jsonResponse(view(job), status: .accepted)
        }
    }

    // MARK: events

    func eventStream(_ id: String, request: Request) throws -> Response {
        guard let job = try store.job(id) else { throw APIError(.notFound, "no job \(id)") }
        let lastSeen =
            request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) }
            ?? request.uri.queryParameters.get("last_event_id").flatMap { Int($0) } ?? 0
        let (backlog, stream, cancel) = events.subscribe(id, after: lastSeen)
        // Nothing logged newer than what the client saw: a snapshot of the job now (numbered after its id).
        if backlog.isEmpty { runner.publishState(job.id) }
        let body = ResponseBody { writer in
            defer { cancel() }
            var ended = false
            for event in backlog {
                try await writer.write(ByteBuffer(string: event.wireText))
                ended = ended || Self.isFinal(event)
            }
            if !ended {
                for await event in stream {
                    try await writer.write(ByteBuffer(string: event.wireText))
                    if Self.isFinal(event) { break }
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    /// A state event of an ended job: the stream's last.
    static func isFinal(_ event: JobEvent) -> Bool {
        guard event.name == "state" else { return false }
        return ["succeeded", "failed", "cancelled"].contains { event.data.contains("\"state\":\"\($0)\"") }
    }

    // MARK: metrics

    func metrics() throws -> Response {
        let counts = try store.counts()
        let runnerMetrics = runner.metrics
        var lines = [
            "# HELP kandinsky_queue_depth Jobs waiting to run.", "# TYPE kandinsky_queue_depth gauge",
            "kandinsky_queue_depth \(counts[.queued] ?? 0)",
            "# HELP kandinsky_jobs Jobs by state.", "# TYPE kandinsky_jobs gauge",
        ]
        for state in JobState.allCases {
            lines.append("kandinsky_jobs{state=\"\(state.rawValue)\"} \(counts[state] ?? 0)")
        }
        lines += [
            "# HELP kandinsky_step_seconds Time per denoising step.", "# TYPE kandinsky_step_seconds summary",
            "kandinsky_step_seconds_sum \(runnerMetrics.stepSeconds)",
            "kandinsky_step_seconds_count \(runnerMetrics.steps)",
            "# HELP kandinsky_model_loads_total Models loaded by the worker.",
            "# TYPE kandinsky_model_loads_total counter", "kandinsky_model_loads_total \(runnerMetrics.modelLoads)",
            "# HELP kandinsky_worker_starts_total Worker processes started.",
            "# TYPE kandinsky_worker_starts_total counter",
            "kandinsky_worker_starts_total \(runnerMetrics.workerStarts)",
            "# HELP kandinsky_event_subscribers Open event streams.", "# TYPE kandinsky_event_subscribers gauge",
            "kandinsky_event_subscribers \(events.subscriberCount)",
        ]
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: lines.joined(separator: "\n") + "\n")))
    }
}
