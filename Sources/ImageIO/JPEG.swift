// JPEG through the C bridge (libjpeg-turbo with setjmp recovery): baseline, progressive, grey, CMYK.
import Foundation
import ImageProcessing
import JPEGBridge

enum JPEGCodec {
    static func read(path: String, data: Data) throws -> PixelImage {
        var pixels: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = data.withUnsafeBytes {
            kd_jpeg_decode($0.bindMemory(to: UInt8.self).baseAddress, $0.count, UInt64(ImageFiles.maxPixels), &pixels,
                           &w, &h, &c, &err, err.count)
        }
        if rc == -2 { throw ImageIOError.tooLarge(path, String(cString: err)) }
        guard rc == 0, let p = pixels else { throw ImageIOError.unreadable(path, String(cString: err)) }
        defer { free(p) }
        return PixelImage(width: Int(w), height: Int(h), channels: Int(c),
                          pixels: Array(UnsafeBufferPointer(start: p, count: Int(w * h * c))))
    }

    static func encode(_ img: PixelImage, quality: Int) throws -> Data {
        let src = img.channels == 1 || img.channels == 3 ? img : (img.channels == 4 ? img.compositedOnWhite() : img.rgb())
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = src.pixels.withUnsafeBufferPointer {
            kd_jpeg_encode($0.baseAddress, Int32(src.width), Int32(src.height), Int32(src.channels), Int32(quality), &out, &size, &err, err.count)
        }
        guard rc == 0, let o = out else { throw ImageIOError.writeFailed("jpeg", String(cString: err)) }
        defer { free(o) }
        return Data(bytes: o, count: size)
    }
}
