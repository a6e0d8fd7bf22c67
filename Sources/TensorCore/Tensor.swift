// A dense, contiguous, row-major float32 tensor. Shapes follow PyTorch's order (NCHW for images,
// [batch, tokens, channels] for sequences) so that a diffusers tensor maps onto ours index for index.
#if canImport(Glibc)
import Glibc
#endif

public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    /// Storage: 64-byte aligned, owned by this tensor unless `keepAlive` holds the owner (a weight mapped from disk).
    public let data: UnsafeMutablePointer<Float>
    private let owned: Bool
    private let keepAlive: AnyObject?

    /// A new tensor with uninitialised storage.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.owned = true
        self.keepAlive = nil
    }

    /// A view over memory someone else owns (for example f32 weights inside an mmapped checkpoint);
    /// `owner` is retained for as long as this tensor lives.
    public init(shape: [Int], borrowing pointer: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.shape = shape
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
        if owned { UnsafeMutableRawPointer(data).deallocate() }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }
    public var rank: Int { shape.count }
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// The same storage under another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, borrowing: data, owner: self)
    }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.data.update(from: data, count: count)
        return t
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
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
