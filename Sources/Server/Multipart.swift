// multipart/form-data (RFC 7578), as OpenAI's image edit requests arrive: named parts, files with a file name.
// Read from a body already bounded by the request limit; the part count is bounded too.
import Foundation

struct MultipartPart: Equatable {
    let name: String
    let filename: String?
    let contentType: String?
    let body: Data
}

enum Multipart {
    static let maxParts = 64

    /// The boundary of a `multipart/form-data; boundary=...` content type (quoted or not).
    static func boundary(ofContentType contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
            var value = String(piece.dropFirst("boundary=".count))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            // RFC 2046: 1 to 70 characters.
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    /// The parts of `body`, or a one-line reason it is not well-formed multipart.
    static func parse(_ body: Data, boundary: String) throws -> [MultipartPart] {
        let delimiter = Data("--\(boundary)".utf8)
        let separator = Data("\r\n--\(boundary)".utf8)
        let headerEnd = Data("\r\n\r\n".utf8)
        guard let first = body.range(of: delimiter) else {
            throw MultipartError("no boundary '\(boundary)' in the body")
        }
        var parts: [MultipartPart] = []
        var cursor = first.upperBound
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if body[cursor...].starts(with: Data("--".utf8)) { return parts }
            guard body[cursor...].starts(with: Data("\r\n".utf8)) else {
                throw MultipartError("a boundary is not followed by CRLF")
            }
            cursor += 2
            guard parts.count < maxParts else { throw MultipartError("more than \(maxParts) parts") }
            guard let headersEnd = body.range(of: headerEnd, in: cursor..<body.endIndex) else {
                throw MultipartError("a part's headers do not end")
            }
            guard let next = body.range(of: separator, in: headersEnd.upperBound..<body.endIndex) else {
                throw MultipartError("a part does not end with the boundary")
            }
            let headers = String(decoding: body[cursor..<headersEnd.lowerBound], as: UTF8.self)
            parts.append(try part(headers: headers, body: Data(body[headersEnd.upperBound..<next.lowerBound])))
            cursor = next.upperBound
        }
    }

    static func part(headers: String, body: Data) throws -> MultipartPart {
        var name: String?
        var filename: String?
        var contentType: String?
        for line in headers.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let field = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if field == "content-type" { contentType = value }
            guard field == "content-disposition" else { continue }
            for attribute in value.split(separator: ";").dropFirst() {
                let pair = attribute.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                var text = pair[1]
                if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
                    text = String(text.dropFirst().dropLast())
                }
                if pair[0].lowercased() == "name" { name = text }
                if pair[0].lowercased() == "filename" { filename = text }
            }
        }
        guard let name else { throw MultipartError("a part has no Content-Disposition name") }
        return MultipartPart(name: name, filename: filename, contentType: contentType, body: body)
    }
}

struct MultipartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
