// PNG through libpng's simplified API (png_image), which reports errors in the struct instead of longjmp-ing,
// so Swift can call it directly. Reads every PNG libpng reads (1-16 bit, grey, palette, alpha) as 8-bit; a 16-bit grey
// PNG without alpha (Pillow's mode I;16, the usual depth map format) also keeps its 16-bit samples.
import CPNG
import Foundation
import ImageProcessing

public enum ImageIOError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case unreadable(String, String)
    case unsupported(String, String)
    case writeFailed(String, String)
    /// The header declares more pixels than ImageFiles.maxPixels.
    case tooLarge(String, String)

    public var description: String {
        switch self {
        case .missing(let p): return "\(p): file not found"
        case .unreadable(let p, let why): return "\(p): cannot decode image: \(why)"
        case .unsupported(let p, let why): return "\(p): \(why)"
        case .tooLarge(let p, let why):
            return "\(p): \(why) (a decompression bomb? set \(ImageFiles.maxPixelsVariable) to allow more)"
        case .writeFailed(let p, let why): return "\(p): cannot write: \(why)"
        }
    }
}

enum PNGCodec {
    // PNG_FORMAT_* are composite macros Swift cannot import; the flags are plain constants.
    static let colorFlag = UInt32(PNG_FORMAT_FLAG_COLOR), alphaFlag = UInt32(PNG_FORMAT_FLAG_ALPHA)

    static func read(path: String, data: Data) throws -> PixelImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let ok = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard ok != 0 else { throw ImageIOError.unreadable(path, message(&image)) }
        defer { png_image_free(&image) }
        let declared = UInt64(image.width) * UInt64(image.height)
        guard declared <= UInt64(ImageFiles.maxPixels) else {
            throw ImageIOError.tooLarge(
                path, "\(image.width)x\(image.height) pixels exceed the limit of \(ImageFiles.maxPixels)")
        }
        let hasAlpha = image.format & alphaFlag != 0
        let hasColor = image.format & colorFlag != 0
        let sixteen = image.format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        let channels = (hasColor ? 3 : 1) + (hasAlpha ? 1 : 0)
        let (w, h) = (Int(image.width), Int(image.height))
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        if sixteen {
            // libpng would gamma-encode 16-bit data on the way to 8 bits (it assumes 16-bit is linear); read the
            // 16-bit values as they are and keep their high byte, as Pillow does. Linear output with alpha comes
            // premultiplied, so colour is divided by alpha again.
            image.format = (hasColor ? colorFlag : 0) | (hasAlpha ? alphaFlag : 0) | UInt32(PNG_FORMAT_FLAG_LINEAR)
            var wide = [UInt16](repeating: 0, count: w * h * channels)
            let done = wide.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * channels), nil) }
            guard done != 0 else { throw ImageIOError.unreadable(path, message(&image)) }
            if channels == 1 { return PixelImage(width: w, height: h, wideSamples: wide) }
            for px in 0..<(w * h) {
                let base = px * channels
                let alpha = hasAlpha ? UInt32(wide[base + channels - 1]) : 65535
                for c in 0..<channels {
                    var v = UInt32(wide[base + c])
                    if hasAlpha && c < channels - 1 { v = alpha == 0 ? 0 : min(65535, (v * 65535 + alpha / 2) / alpha) }
                    pixels[base + c] = UInt8(v >> 8)
                }
            }
        } else {
            image.format = (hasColor ? colorFlag : 0) | (hasAlpha ? alphaFlag : 0)
            let done = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(w * channels), nil) }
            guard done != 0 else { throw ImageIOError.unreadable(path, message(&image)) }
        }
        return PixelImage(width: w, height: h, channels: channels, pixels: pixels)
    }

    static func encode(_ img: PixelImage, text: [(String, String)]) throws -> Data {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = (img.channels >= 3 ? colorFlag : 0) | (img.channels % 2 == 0 ? alphaFlag : 0)
        var size: Int = 0
        let stride = Int32(img.width * img.channels)
        // With no buffer, png_image_write_to_memory reports the size it needs.
        guard img.pixels.withUnsafeBytes({ png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, stride, nil) }) != 0 else {
            throw ImageIOError.writeFailed("png", message(&image))
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = out.withUnsafeMutableBytes { dst in
            img.pixels.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, $0.baseAddress, stride, nil) }
        }
        guard ok != 0 else { throw ImageIOError.writeFailed("png", message(&image)) }
        return PNGText.insert(text, into: Data(out.prefix(size)))
    }

    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Text chunks (parameters and seed) inserted after IHDR; the simplified writer has no text API. The PNG spec
/// (section 11.3.4) makes tEXt Latin-1, so a value with a character beyond U+00FF (a Cyrillic or CJK prompt) goes
/// into an iTXt chunk as UTF-8 instead of being garbled; NUL, the separator, becomes a space.
enum PNGText {
    static func insert(_ entries: [(String, String)], into png: Data) -> Data {
        if entries.isEmpty { return png }
        var chunks = Data()
        for (key, value) in entries {
            let keyword = Data(key.unicodeScalars.filter { $0.value < 0x80 && $0.value != 0 }.prefix(79).map {
                UInt8($0.value)
            })
            let space: Unicode.Scalar = " "
            let scalars = value.unicodeScalars.map { $0.value == 0 ? space : $0 }
            if scalars.allSatisfy({ $0.value <= 0xFF }) {
                chunks += chunk("tEXt", keyword + Data([0]) + Data(scalars.map { UInt8($0.value) }))
            } else {
                // Keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword, UTF-8.
                let text = String(String.UnicodeScalarView(scalars))
                chunks += chunk("iTXt", keyword + Data([0, 0, 0, 0, 0]) + Data(text.utf8))
            }
        }
        // 8-byte signature + IHDR (4 length + 4 type + 13 data + 4 crc) = 33 bytes.
        return png.prefix(33) + chunks + png.dropFirst(33)
    }

    /// Length, type, data and CRC of one chunk.
    private static func chunk(_ type: String, _ body: Data) -> Data {
        var chunk = Data()
        var length = UInt32(body.count).bigEndian
        withUnsafeBytes(of: &length) { chunk += $0 }
        let typed = Data(type.utf8) + body
        chunk += typed
        var crc = crc32(typed).bigEndian
        withUnsafeBytes(of: &crc) { chunk += $0 }
        return chunk
    }

    static func crc32(_ d: Data) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in d {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xffff_ffff
    }
}
