// AUTOMATIC1111's web UI API (/sdapi/v1/...) over our queue, so its clients work unchanged. txt2img and img2img
// (inpainting when a mask is given) queue one job per image and answer when they have ended, as A1111's
// synchronous calls do; progress, interrupt, options, models, samplers and scripts answer as far as clients need
// them to start. docs/server.md maps every field; fields without an equivalent are accepted and listed in `info`.
import Foundation
import Hummingbird

/// The jobs that A1111 requests are waiting for, one group per request: interrupt stops the group of the job that
/// runs now, never a job submitted through /v1/jobs.
final class A1111Requests: @unchecked Sendable {
    private let lock = NSLock()
    private var groups: [UUID: [String]] = [:]

    func add(_ jobs: [String]) -> UUID {
        let token = UUID()
        lock.withLock { groups[token] = jobs }
        return token
    }

    func remove(_ token: UUID) {
        _ = lock.withLock { groups.removeValue(forKey: token) }
    }

    /// The jobs of the request that `job` belongs to (empty if none does).
    func group(of job: String) -> [String] {
        lock.withLock { groups.values.first { $0.contains(job) } ?? [] }
    }
}

struct A1111Routes: Sendable {
    let routes: Routes
    let requests = A1111Requests()

    /// The one checkpoint clients see: the model every plugin uses when none is named.
    static let modelTitle = "kandinsky-2.2-default"
    /// A1111 sampler names with an equivalent here (docs/schedulers.md). DDPM is ours (not an A1111 name).
    static let samplers: [(name: String, scheduler: String)] = [
        ("DDPM", "ddpm"), ("DDIM", "ddim"), ("DPM++ 2M", "dpmsolver++"), ("UniPC", "unipc"),
    ]
    /// Images one request may ask for (batch_size x n_iter).
    static let maxImages = 16

    func register(on router: RecordingRouter) {
        router.post("/sdapi/v1/txt2img") { request, _ in try await generate(request, fromImage: false) }
        router.post("/sdapi/v1/img2img") { request, _ in try await generate(request, fromImage: true) }
        router.get("/sdapi/v1/progress") { _, _ in try progress() }
        router.post("/sdapi/v1/interrupt") { _, _ in try interrupt() }
        router.get("/sdapi/v1/options") { _, _ in jsonResponse(Self.options) }
        router.post("/sdapi/v1/options") { request, _ in try await setOptions(request) }
        router.get("/sdapi/v1/sd-models") { _, _ in jsonResponse([Self.model]) }
        router.get("/sdapi/v1/samplers") { _, _ in
            jsonResponse(Self.samplers.map { ["name": $0.name, "aliases": [$0.scheduler], "options": [:]] })
        }
        router.get("/sdapi/v1/scripts") { _, _ in jsonResponse(["txt2img": [String](), "img2img": [String]()]) }
    }

    static let model: [String: Any] = [
        "title": modelTitle, "model_name": modelTitle, "hash": NSNull(), "sha256": NSNull(),
        "filename": "models/default", "config": NSNull(),
    ]
    static let options: [String: Any] = [
        "sd_model_checkpoint": modelTitle, "sd_checkpoint_hash": NSNull(), "samples_format": "png",
    ]

    // MARK: txt2img, img2img

    func generate(_ request: Request, fromImage: Bool) async throws -> Response {
        let body = try await jsonBody(request, limit: routes.configuration.maxRequestBytes)
        var fields = CompatibilityFields(body)
        var notes: [String] = []
        var inputs: [String: String] = [:]
        var params: [String: String] = [:]
        var pluginID = "text2img"
        if fromImage {
            guard let images = fields.value("init_images") as? [Any], let first = images.first else {
                throw APIError(.unprocessableContent, "init_images: give one base64 PNG or JPEG", field: "init_images")
            }
            if images.count > 1 { notes.append("init_images: only the first of \(images.count) is used") }
            inputs["image"] = try routes.storeBase64Image(first, field: "init_images").id
            if let mask = fields.value("mask") {
                pluginID = "inpaint"
                inputs["mask"] = try routes.storeBase64Image(mask, field: "mask").id
                if let invert = try fields.boolean("inpainting_mask_invert") { params["invert_mask"] = "\(invert)" }
                if let blur = try fields.integer("mask_blur") { params["mask_blur"] = "\(blur)" }
                if let onlyMasked = try fields.boolean("inpaint_full_res") {
                    params["inpaint_area"] = onlyMasked ? "masked" : "whole"
                }
                if let padding = try fields.integer("inpaint_full_res_padding") {
                    params["masked_padding"] = "\(padding)"
                }
            } else {
                pluginID = "img2img"
                if let strength = try fields.double("denoising_strength") { params["strength"] = "\(strength)" }
            }
        }
        if let prompt = try fields.string("prompt") { params["prompt"] = prompt }
        if let negative = try fields.string("negative_prompt"), !negative.isEmpty {
            params["negative_prompt"] = negative
        }
        if let steps = try fields.integer("steps") { params["num_inference_steps"] = "\(steps)" }
        if let scale = try fields.double("cfg_scale") { params["guidance_scale"] = "\(scale)" }
        if let width = try fields.integer("width") { params["width"] = "\(width)" }
        if let height = try fields.integer("height") { params["height"] = "\(height)" }
        // Clients send both names; sampler_name is the current one.
        let sampler = try fields.string("sampler_name") ?? fields.string("sampler_index")
        if let sampler {
            if let known = Self.samplers.first(where: { $0.name.lowercased() == sampler.lowercased() }) {
                params["scheduler"] = known.scheduler
            } else {
                notes.append("sampler '\(sampler)' has no equivalent: the plugin's default sampler ran")
            }
        }
        // A1111's `scheduler` is the noise schedule (Karras, ...), not ours (the sampler, from sampler_name).
        if let schedule = try fields.string("scheduler"), schedule.lowercased() != "automatic" {
            notes.append("scheduler '\(schedule)' has no equivalent: the sampler's own noise schedule ran")
        }
        let batchSize = try fields.integer("batch_size") ?? 1
        let iterations = try fields.integer("n_iter") ?? 1
        let count = batchSize * iterations
        guard batchSize >= 1, iterations >= 1, count <= Self.maxImages else {
            throw APIError(
                .unprocessableContent, "batch_size x n_iter must be 1 to \(Self.maxImages) (got \(count))",
                field: "batch_size")
        }
        let seed = try fields.integer("seed") ?? -1
        let plugin = try routes.plugin(pluginID)
        params.merge(try fields.pluginParams(of: plugin)) { _, passed in passed }

        let jobs = try routes.enqueueSeries(
            plugin, params: params, inputs: inputs, count: Int(count), seed: seed)
        let group = requests.add(jobs.map(\.id))
        defer { requests.remove(group) }
        let ended = try await routes.waitForEnd(jobs.map(\.id))
        if let failed = ended.first(where: { $0.state == .failed }) {
            throw APIError(.internalServerError, "job \(failed.id) failed: \(failed.error ?? "no reason given")")
        }
        let succeeded = ended.filter { $0.state == .succeeded }
        var parameters = body
        for key in ["init_images", "mask"] where body[key] != nil { parameters[key] = NSNull() }
        let info = try infoText(
            succeeded, all: ended, plugin: plugin.id, ignored: fields.ignored, notes: notes,
            batchSize: Int(batchSize), iterations: Int(iterations))
        let images = try succeeded.compactMap(\.results.first).map(routes.base64Image)
        return jsonResponse(["images": images, "parameters": parameters, "info": info])
    }

    /// A1111's `info`: a JSON text with the seeds and settings that ran, and ours under "kandinsky".
    func infoText(
        _ succeeded: [Job], all: [Job], plugin: String, ignored: [String], notes: [String], batchSize: Int,
        iterations: Int
    ) throws -> String {
        let resolved = succeeded.first?.resolvedParams ?? all.first?.params ?? [:]
        let seeds = succeeded.compactMap { $0.seed }
        let size = succeeded.first?.results.first.flatMap(routes.imageSize)
        let prompt = resolved["prompt"] ?? ""
        let negative = resolved["negative_prompt"] ?? ""
        var info: [String: Any] = [
            "prompt": prompt, "all_prompts": Array(repeating: prompt, count: seeds.count),
            "negative_prompt": negative, "all_negative_prompts": Array(repeating: negative, count: seeds.count),
            "seed": seeds.first ?? -1, "all_seeds": seeds, "subseed": -1,
            "all_subseeds": Array(repeating: -1, count: seeds.count), "width": size?.width ?? 0,
            "height": size?.height ?? 0, "steps": Int(resolved["num_inference_steps"] ?? "") ?? 0,
            "cfg_scale": Double(resolved["guidance_scale"] ?? "") ?? 0, "batch_size": batchSize,
            "n_iter": iterations, "sd_model_name": Self.modelTitle,
            "sampler_name": Self.samplers.first { $0.scheduler == resolved["scheduler"] }?.name ?? "",
            "infotexts": succeeded.map { job in
                (job.resolvedParams ?? job.params).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                    .joined(separator: ", ")
            },
        ]
        info["kandinsky"] = [
            "plugin": plugin, "jobs": all.map(\.id), "results": succeeded.compactMap(\.results.first),
            "ignored": ignored, "notes": notes, "interrupted": all.contains { $0.state == .cancelled },
            "params": resolved,
        ]
        let data = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: progress, interrupt, options

    /// "Whatever runs now", as A1111 reports it: the fraction of the running job's current stage.
    func progress() throws -> Response {
        let counts = try routes.store.counts()
        var fraction = 0.0
        var state: [String: Any] = [
            "skipped": false, "interrupted": false, "job": "", "job_no": 0, "job_timestamp": "0",
            "job_count": (counts[.queued] ?? 0) + (counts[.running] ?? 0), "sampling_step": 0, "sampling_steps": 0,
        ]
        var eta = 0.0
        var stage: Any = NSNull()
        if let id = routes.runner.runningJob, let job = try routes.store.job(id) {
            state["job"] = job.id
            state["interrupted"] = job.cancelRequested
            if let step = job.step, let total = job.total, total > 0 {
                fraction = Double(step) / Double(total)
                state["sampling_step"] = step
                state["sampling_steps"] = total
            }
            eta = routes.runner.eta(of: id) ?? 0
            stage = job.stage.map { $0 as Any } ?? NSNull()
        }
        return jsonResponse([
            "progress": fraction, "eta_relative": eta, "state": state, "current_image": NSNull(), "textinfo": stage,
        ])
    }

    /// Stops the running job if an A1111 request waits for it, with the rest of that request's images.
    func interrupt() throws -> Response {
        guard let running = routes.runner.runningJob else { return jsonResponse([String: Any]()) }
        for id in requests.group(of: running) {
            if case .stopping = try routes.store.cancel(id) { routes.runner.stopIfRunning(id) }
            routes.runner.publishState(id)
        }
        return jsonResponse([String: Any]())
    }

    /// Clients set the checkpoint before they generate: the one model here is accepted, any other refused.
    func setOptions(_ request: Request) async throws -> Response {
        let body = try await jsonBody(request, limit: 1 << 20)
        var fields = CompatibilityFields(body)
        if let checkpoint = try fields.string("sd_model_checkpoint"), checkpoint != Self.modelTitle {
            throw APIError(
                .unprocessableContent,
                "sd_model_checkpoint '\(checkpoint)': the only checkpoint is '\(Self.modelTitle)'",
                field: "sd_model_checkpoint")
        }
        return jsonResponse([String: Any]())
    }
}
