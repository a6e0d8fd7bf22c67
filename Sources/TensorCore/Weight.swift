// A layer's weight matrix: float32 in memory, or float16/bfloat16 left in the mapped checkpoint. In fp32 the half
// values are widened into a pooled scratch buffer each time the layer runs (widening 5 GB of a real-size UNet takes
// well under a second per step, against ~40 s of arithmetic, and halves the resident memory of a half-precision
// checkpoint); in bf16 they are laid out once, as bfloat16, in the layout the layer's oneDNN primitive asks for.
import DNNLBridge
import Foundation

public final class Weight: @unchecked Sendable {
    public enum Storage {
        case float32(Tensor)
        /// Raw 16-bit values inside a mapping kept alive by `owner`.
        case half(UnsafeRawPointer, bfloat: Bool, owner: AnyObject)
    }
    public let shape: [Int]
    public let count: Int
    public let storage: Storage
    /// The precision this layer's products run in (the model's precision mode).
    public let precision: Precision
    /// The weights in the layout a oneDNN primitive asked for (kd_weights), made on first use and kept where that
    /// costs no extra memory: float32 storage, or bf16 on a CPU that runs it natively.
    private var prepared: OpaquePointer?
    /// Weights made from this one (the phase kernels of an upsampling convolution), kept in bf16 only.
    private var keptDerived: [Weight]?
    private let lock = NSLock()

    public init(_ t: Tensor, precision: Precision = .fp32) {
        shape = t.shape; count = t.count; storage = .float32(t); self.precision = precision
    }

    public init(shape: [Int], half pointer: UnsafeRawPointer, bfloat: Bool, owner: AnyObject,
                precision: Precision = .fp32) {
        self.shape = shape; count = shape.reduce(1, *); storage = .half(pointer, bfloat: bfloat, owner: owner)
        self.precision = precision
    }

    deinit { kd_weights_free(prepared) }

    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// Runs `body` with the weight as contiguous float32.
    public func withFloat32<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        switch storage {
        case .float32(let t):
            return try body(t.data)
        case .half(let src, let bfloat, _):
            let buf = MemoryPool.shared.acquireFloats(count)
            defer { MemoryPool.shared.releaseFloats(buf) }
            widen(src, bfloat: bfloat, into: buf, count: count)
            return try body(buf)
        }
    }

    /// Weights derived from this one by `make`, which is always the same rule for one weight (the phase kernels of
    /// an upsampling convolution). In bf16 they are made once and kept, so their bfloat16 layout is made once, as
    /// this weight's own would be; in fp32 they are made per call, like the widened copy of a half-precision weight,
    /// so they cost no memory between calls.
    public func derived(_ make: (Weight) -> [Weight]) -> [Weight] {
        guard precision == .bf16 else { return make(self) }
        lock.lock()
        defer { lock.unlock() }
        if let kept = keptDerived { return kept }
        let made = make(self)
        keptDerived = made
        return made
    }

    /// Runs `body` with the weight's values rounded to bfloat16, as float32 (the emulated bf16 path).
    func withBFloat16RoundedFloat32<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        withFloat32 { plain in
            let rounded = MemoryPool.shared.acquireFloats(count)
            defer { MemoryPool.shared.releaseFloats(rounded) }
            rounded.update(from: plain, count: count)
            roundToBFloat16(rounded, count: count)
            return body(rounded)
        }
    }

    /// Runs `body` with weights in the layout of primitive `op`. Where the primitive takes the plain layout, the stored
    /// float32 values (or, for half precision in fp32, a per-call widened copy) are used in place. Other layouts are
    /// made once and kept for float32 storage and bf16 weights; half precision in fp32 is laid out per call, so it
    /// never costs float32 memory.
    func withPrepared<R>(for op: OpaquePointer, _ body: (OpaquePointer) -> R) -> R {
        let perCall: Bool
        switch storage {
        case .float32(let t):
            if let wrapped = kd_weights_wrap(op, t.data) {
                defer { kd_weights_free(wrapped) }
                return body(wrapped)
            }
            perCall = false
        case .half:
            perCall = precision == .fp32
        }
        if perCall {
            return withFloat32 { plain in
                let onceOnly = kd_weights_wrap(op, plain) ?? prepare(op, plain)
                defer { kd_weights_free(onceOnly) }
                return body(onceOnly)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        if let current = prepared, kd_weights_fit(current, op) == 0 {
            prepared = relayout(current, op)
            kd_weights_free(current)
        }
        if prepared == nil {
            prepared = withFloat32 { prepare(op, $0) }
            releaseSourcePages()
        }
        return body(prepared!)
    }

    private func prepare(_ op: OpaquePointer, _ plain: UnsafePointer<Float>) -> OpaquePointer {
        var message = [CChar](repeating: 0, count: 256)
        guard let w = kd_weights_prepare(op, plain, &message, message.count) else {
            fatalError("oneDNN weights \(shape): \(String(cString: message))")
        }
        return w
    }

    private func relayout(_ from: OpaquePointer, _ op: OpaquePointer) -> OpaquePointer {
        var message = [CChar](repeating: 0, count: 256)
        guard let w = kd_weights_relayout(from, op, &message, message.count) else {
            fatalError("oneDNN weights \(shape): \(String(cString: message))")
        }
        return w
    }

    /// Once laid out, the 16-bit values in the mapped file are no longer read: hand their pages back to the kernel
    /// so the checkpoint does not stay resident beside its bf16 copy (they are re-read from disk if ever needed).
    private func releaseSourcePages() {
        guard case .half(let src, _, _) = storage else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: src) + page - 1) / page * page
        let end = (Int(bitPattern: src) + 2 * count) / page * page
        if end > start { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
    }
}

/// float16/bfloat16 -> float32 on all cores. float16 goes 16 lanes at a time (F16C with -march=x86-64-v3; the
/// scalar loop costs ~10x more, measured as 5 s per real-size UNet call).
public func widen(_ src: UnsafeRawPointer, bfloat: Bool, into dst: UnsafeMutablePointer<Float>, count n: Int) {
    parallelFor(n, minPerThread: 1 << 16) { r in
        if bfloat {
            for i in r { dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i,
                                                                             as: UInt16.self)) << 16) }
            return
        }
        var i = r.lowerBound
        let raw = UnsafeMutableRawPointer(dst)
        while i + 16 <= r.upperBound {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self)
            raw.storeBytes(of: SIMD16<Float>(h), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < r.upperBound {
            dst[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            i += 1
        }
    }
}
