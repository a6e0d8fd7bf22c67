// OpenAI's Images API over our queue: POST /v1/images/generations (text2img) and POST /v1/images/edits (inpaint,
// where the mask's fully transparent pixels mark what to repaint, as that API defines it). One job per image, seeds
// seed, seed + 1, ...; the answer comes when they have ended. docs/server.md maps every field.
import Foundation
import HTTPTypes
import Hummingbird
import ImageIO
import ImageProcessing

struct OpenAIImagesRoutes: Sendable {
    let routes: Routes

    /// Images one request may ask for (`n`), as OpenAI's own limit.
    static let maxImages = 10

    func register(on router: RecordingRouter) {
        router.post("/v1/images/generations") { request, _ in try await generations(request) }
        router.post("/v1/images/edits") { request, _ in try await edits(request) }
    }

    func generations(_ request: Request) async throws -> Response {
        var fields = CompatibilityFields(try await jsonBody(request, limit: routes.configuration.maxRequestBytes))
        return try await run("text2img", fields: &fields, inputs: [:], host: request.head.authority)
    }

    func edits(_ request: Request) async throws -> Response {
        guard let contentType = request.headers[.contentType],
            let boundary = Multipart.boundary(ofContentType: contentType)
        else {
            throw APIError(.badRequest, "an image edit is sent as multipart/form-data (image, mask, prompt, ...)")
        }
        var request = request
        let limit = routes.configuration.maxRequestBytes
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(limit) bytes")
        }
        let parts: [MultipartPart]
        do {
            parts = try Multipart.parse(Data(buffer.readableBytesView), boundary: boundary)
        } catch {
            throw APIError(.badRequest, "the multipart body cannot be read: \(error)")
        }
        // Files: image (or image[] of which the first is used) and mask; every other part is a text field.
        var text: [String: Any] = [:]
        var files: [String: [Data]] = [:]
        for part in parts {
            let name = part.name.hasSuffix("[]") ? String(part.name.dropLast(2)) : part.name
            if part.filename != nil || name == "image" || name == "mask" {
                files[name, default: []].append(part.body)
            } else {
                text[name] = String(decoding: part.body, as: UTF8.self)
            }
        }
        guard let imageBytes = files["image"]?.first else {
            throw APIError(.badRequest, "image: the picture to edit is required", field: "image")
        }
        let image = try routes.storeImage(imageBytes, field: "image")
        var inputs = ["image": image.id]
        // With a mask, or an image with transparent pixels, the transparent part is repainted (inpaint); without
        // either, the whole picture is edited by the prompt (img2img), as OpenAI's newer models do.
        var repaint: PixelImage?
        if let maskBytes = files["mask"]?.first {
            let mask = try pixels(of: try routes.storeImage(maskBytes, field: "mask"))
            guard mask.channels % 2 == 0 else {
                throw APIError(
                    .badRequest, "mask: a PNG with an alpha channel is required (transparent = repaint)", field: "mask")
            }
            repaint = mask
        } else {
            let picture = try pixels(of: image)
            if Self.hasTransparentPixels(picture) { repaint = picture }
        }
        if let repaint { inputs["mask"] = try storeRepaintMask(fromAlphaOf: repaint).id }
        var fields = CompatibilityFields(text)
        var notes: [String] = []
        if let given = files["image"]?.count, given > 1 { notes.append("image: only the first of \(given) is used") }
        return try await run(
            inputs["mask"] == nil ? "img2img" : "inpaint", fields: &fields, inputs: inputs,
            host: request.head.authority, notes: notes)
    }

    /// The shared part: fields to parameters, the jobs, the answer.
    func run(
        _ pluginID: String, fields: inout CompatibilityFields, inputs: [String: String], host: String?,
        notes: [String] = []
    ) async throws -> Response {
        guard let prompt = try fields.string("prompt"), !prompt.isEmpty else {
            throw APIError(.badRequest, "prompt: required", field: "prompt")
        }
        var params = ["prompt": prompt]
        let count = try fields.integer("n") ?? 1
        guard (1...Int64(Self.maxImages)).contains(count) else {
            throw APIError(.badRequest, "n: 1 to \(Self.maxImages) images", field: "n")
        }
        if let size = try fields.string("size"), size != "auto" {
            let sides = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard sides.count == 2 else {
                throw APIError(
                    .badRequest, "size '\(size)': expected WIDTHxHEIGHT (e.g. 256x256) or auto", field: "size")
            }
            params["width"] = "\(sides[0])"
            params["height"] = "\(sides[1])"
        }
        let format = try fields.string("response_format") ?? "b64_json"
        guard format == "b64_json" || format == "url" else {
            throw APIError(
                .badRequest, "response_format '\(format)': expected b64_json or url", field: "response_format")
        }
        let outputFormat = try fields.string("output_format") ?? "png"
        guard outputFormat == "png" else {
            throw APIError(
                .badRequest, "output_format '\(outputFormat)': only png is made here", field: "output_format")
        }
        // `model` names theirs; ours is chosen by the plugin's model_name (the default model when absent).
        var allNotes = notes
        if let model = try fields.string("model") { allNotes.append("model '\(model)': the default model ran") }
        let seed = try fields.integer("seed") ?? -1
        let plugin = try routes.plugin(pluginID)
        params.merge(try fields.pluginParams(of: plugin)) { _, passed in passed }

        let jobs = try routes.enqueueSeries(
            plugin, params: params, inputs: inputs, count: Int(count), seed: seed)
        let ended = try await routes.waitForEnd(jobs.map(\.id))
        if let unfinished = ended.first(where: { $0.state != .succeeded }) {
            throw APIError(
                .internalServerError, "job \(unfinished.id) \(unfinished.state.rawValue): \(unfinished.error ?? "")")
        }
        let results = ended.compactMap(\.results.first)
        let data: [[String: Any]] = try results.map { id in
            if format == "url" { return ["url": "http://\(host ?? "127.0.0.1")/v1/images/\(id)"] }
            return ["b64_json": try routes.base64Image(id)]
        }
        return jsonResponse([
            "created": Int(Date().timeIntervalSince1970), "data": data,
            "kandinsky": [
                "plugin": pluginID, "jobs": ended.map(\.id), "seeds": ended.compactMap(\.seed),
                "ignored": fields.ignored, "notes": allNotes,
            ] as [String: Any],
        ])
    }

    func pixels(of record: JobStore.ImageRecord) throws -> PixelImage {
        guard let path = try routes.images.path(of: record.id) else {
            throw APIError(.internalServerError, "the image \(record.id) is missing from the store")
        }
        return try ImageFiles.read(path)
    }

    static func hasTransparentPixels(_ image: PixelImage) -> Bool {
        guard image.channels % 2 == 0 else { return false }
        return stride(from: image.channels - 1, to: image.pixels.count, by: image.channels).contains {
            image.pixels[$0] == 0
        }
    }

    /// OpenAI's mask (alpha 0 = repaint) as ours (white = repaint), a grey PNG stored like an upload.
    func storeRepaintMask(fromAlphaOf image: PixelImage) throws -> JobStore.ImageRecord {
        var grey = [UInt8](repeating: 0, count: image.width * image.height)
        image.pixels.withUnsafeBufferPointer { source in
            for pixel in 0..<grey.count where source[pixel * image.channels + image.channels - 1] == 0 {
                grey[pixel] = 255
            }
        }
        return try routes.images.add(PixelImage(width: image.width, height: image.height, channels: 1, pixels: grey))
    }
}
