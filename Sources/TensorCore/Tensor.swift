// A dense, contiguous float32 tensor. Shapes follow PyTorch's order (NCHW for images, [batch, tokens, channels] for
// sequences) so that a diffusers tensor maps onto ours index for index. A feature map's storage is either planar
// (row-major NCHW, the default and the only layout of the fp32 parity mode) or channels-last (NHWC: the layout
// oneDNN's bf16 convolutions read and write, kept between layers in bf16 mode so no convolution pays a transpose).
#if canImport(Glibc)
import Glibc
#endif

/// How a rank-4 [B, C, H, W] tensor's storage is ordered; every other rank is planar (plain row-major).
public enum Layout: Sendable {
    /// NCHW, row-major in the shape's order.
    case planar
    /// NHWC: the C values of each pixel next to each other.
    case channelsLast
}

public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let layout: Layout
    public let count: Int
    /// Storage: 64-byte aligned (from `MemoryPool`), owned by this tensor unless `keepAlive` holds the owner (a
    /// weight mapped from disk).
    public let data: UnsafeMutablePointer<Float>
    private let owned: Bool
    private let keepAlive: AnyObject?

    /// A new tensor with uninitialised storage.
    public init(shape: [Int], layout: Layout = .planar) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(layout == .planar || shape.count == 4, "channels-last needs [B, C, H, W], not \(shape)")
        self.shape = shape
        self.layout = layout
        self.count = shape.reduce(1, *)
        self.data = MemoryPool.shared.acquireFloats(count)
        self.owned = true
        self.keepAlive = nil
    }

    /// A view over memory someone else owns (for example f32 weights inside an mmapped checkpoint);
    /// `owner` is retained for as long as this tensor lives.
    public init(shape: [Int], layout: Layout = .planar, borrowing pointer: UnsafeMutablePointer<Float>,
                owner: AnyObject) {
        precondition(layout == .planar || shape.count == 4, "channels-last needs [B, C, H, W], not \(shape)")
        self.shape = shape
        self.layout = layout
        self.count = shape.reduce(1, *)
        self.data = pointer
        self.owned = false
        self.keepAlive = owner
    }

    public convenience init(shape: [Int], filledWith value: Float) {
        self.init(shape: shape)
        data.update(repeating: value, count: count)
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        if owned { MemoryPool.shared.releaseFloats(data) }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }
    public var rank: Int { shape.count }
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// The same storage under another shape of equal element count (no copy); planar storage only.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        precondition(layout == .planar, "reshape of a channels-last \(shape): convert with planar() first")
        return Tensor(shape: newShape, borrowing: data, owner: self)
    }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape, layout: layout)
        t.data.update(from: data, count: count)
        return t
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { layout == .planar ? "Tensor\(shape)" : "Tensor\(shape) channels-last" }
}

extension Tensor {
    /// This tensor in planar (NCHW) storage: itself when it already is, else a transposed copy.
    public func planar() -> Tensor { layout == .planar ? self : relaidOut(as: .planar) }

    /// This feature map in channels-last (NHWC) storage: itself when it already is, else a transposed copy.
    public func channelsLast() -> Tensor {
        guard layout == .planar else { return self }
        shapeCheck(rank == 4, "channels-last needs [B, C, H, W], not \(shape)")
        return relaidOut(as: .channelsLast)
    }

    /// A copy in the other layout: per image, [C, H*W] and [H*W, C] are each other's transpose.
    private func relaidOut(as target: Layout) -> Tensor {
        let (batch, channels, pixels) = (dim(0), dim(1), dim(2) * dim(3))
        let (rows, columns) = target == .planar ? (pixels, channels) : (channels, pixels)
        let out = Tensor(shape: shape, layout: target)
        for b in 0..<batch {
            transposeMatrix(data + b * pixels * channels, rows: rows, columns: columns,
                            into: out.data + b * pixels * channels)
        }
        return out
    }

    /// This tensor in `other`'s layout.
    public func inLayout(of other: Tensor) -> Tensor { other.layout == .planar ? planar() : channelsLast() }

    /// A channels-last feature map's pixels as tokens [B, H*W, C] (the same storage, no copy).
    public func pixelTokens() -> Tensor {
        precondition(layout == .channelsLast, "pixelTokens of a planar \(shape)")
        return Tensor(shape: [dim(0), dim(2) * dim(3), dim(1)], borrowing: data, owner: self)
    }

    /// Tokens [B, H*W, C] as a channels-last feature map [B, C, H, W] (the same storage, no copy).
    public func pixelMap(height: Int, width: Int) -> Tensor {
        shapeCheck(rank == 3 && dim(1) == height * width, "pixelMap \(height)x\(width) of \(shape)")
        return Tensor(shape: [dim(0), dim(2), height, width], layout: .channelsLast, borrowing: data, owner: self)
    }
}

/// dst [columns, rows] = src [rows, columns] transposed, in 32x32 tiles on all threads.
public func transposeMatrix(_ src: UnsafePointer<Float>, rows: Int, columns: Int,
                            into dst: UnsafeMutablePointer<Float>) {
    let tile = 32
    let rowTiles = (rows + tile - 1) / tile
    parallelFor(rowTiles) { range in
        for rowTile in range {
            let i0 = rowTile * tile
            for j0 in stride(from: 0, to: columns, by: tile) {
                for i in i0..<min(i0 + tile, rows) {
                    for j in j0..<min(j0 + tile, columns) { dst[j * rows + i] = src[i * columns + j] }
                }
            }
        }
    }
}

/// Aborts with a message naming the operation and the shapes: a shape error inside a network is a bug, not input.
@inline(__always)
public func shapeCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError("shape error: \(message())", file: file, line: line) }
}

extension Tensor {
    /// Whether every value is finite (no NaN, no infinity): the check a loop makes after each step so that a broken
    /// model is reported where it broke instead of trapping later in a conversion.
    public var allFinite: Bool {
        let p = data
        for i in 0..<count where !p[i].isFinite { return false }
        return true
    }
}
