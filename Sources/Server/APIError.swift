// Errors as the API answers them: a status and {"error": {"message": ..., "field": ...}}, the field naming the
// parameter or input a client must fix.
import Foundation
import HTTPTypes
import Hummingbird

struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    var field: String?
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: [String: Any] = ["message": message]
        error["field"] = field
        var response = jsonResponse(["error": error], status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// A JSON response of a JSONSerialization-compatible value, keys sorted.
func jsonResponse(_ value: Any, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

/// The request body as JSON object, at most `limit` bytes.
func jsonBody(_ request: Request, limit: Int) async throws -> [String: Any] {
    var request = request
    let buffer: ByteBuffer
    do {
        buffer = try await request.collectBody(upTo: limit)
    } catch {
        throw APIError(.contentTooLarge, "the request body is larger than \(limit) bytes")
    }
    guard let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any] else {
        throw APIError(.badRequest, "the request body is not a JSON object")
    }
    return object
}
