// The compute backend: which library does the big products, and in which precision. Networks never see it; they
// call conv2d/linear/attention, and those ask here. oneDNN (the default) dispatches at run time to the best kernels
// of the CPU it finds (AVX2, AVX-512, AMX); OpenBLAS stays selectable for comparison (docs/performance.md).
import DNNLBridge
import Foundation

/// The arithmetic a layer's products run in. `fp32` is the parity mode; `bf16` keeps large weights in bfloat16 and
/// multiplies in bfloat16 with float32 accumulation, while norms, softmax and the schedulers stay float32.
public enum Precision: String, Sendable, CaseIterable {
    case fp32, bf16

    /// "auto", "fp32" or "bf16" as a user writes it; auto is bf16 where the CPU multiplies bfloat16 natively.
    public init?(choice: String) {
        switch choice {
        case "auto": self = ComputeBackend.nativeBF16 ? .bf16 : .fp32
        case "fp32": self = .fp32
        case "bf16": self = .bf16
        default: return nil
        }
    }

    public static let choices = ["auto", "fp32", "bf16"]
}

public enum ComputeBackend: String, Sendable {
    case onednn, openblas

    /// KANDINSKY_BACKEND=openblas selects OpenBLAS for fp32 products; anything else (or nothing) is oneDNN.
    public static let current: ComputeBackend = {
        let choice = getenv("KANDINSKY_BACKEND").map { String(cString: $0) }
        let backend: ComputeBackend = choice == "openblas" ? .openblas : .onednn
        kd_dnnl_set_threads(Int32(Parallel.threads))
        return backend
    }()

    /// oneDNN's instruction set on this CPU, e.g. "avx2" or "avx512_core_amx".
    public static var isa: String { String(cString: kd_dnnl_isa()) }

    /// True where bfloat16 products run on the CPU's own units (avx512_bf16 or AMX). Elsewhere `bf16` is emulated:
    /// operands are rounded to bfloat16 and multiplied in float32, which gives bfloat16's numbers, not its speed.
    public static var nativeBF16: Bool { kd_dnnl_native_bf16() != 0 }

    /// One line for `--verbose` and `inspect`: backend, ISA, and how bf16 runs here.
    public static var summary: String {
        let bf16 = nativeBF16 ? "bf16 native" : "bf16 emulated (no avx512_bf16/AMX)"
        return "backend \(current.rawValue), oneDNN ISA \(isa), \(bf16), \(Parallel.threads) threads"
    }
}

/// Primitive kinds and shapes, the key of the primitive cache.
struct OperationKey: Hashable {
    enum Kind: Hashable { case convolution, linear, matmul }
    let kind: Kind
    let dims: [Int]
    let precision: Precision
    let bias: Bool
    /// Convolutions: activations stay NCHW (oneDNN's GEMM kernels) instead of its preferred blocked layout.
    var plainLayout = false
    /// Convolutions: the caller's input and output storage.
    var inputLayout = Layout.planar
    var outputLayout = Layout.planar
}

/// oneDNN primitives, created once per shape and kept for the life of the process (a few per layer shape).
final class PrimitiveCache: @unchecked Sendable {
    static let shared = PrimitiveCache()
    private var operations: [OperationKey: OpaquePointer] = [:]
    /// Keys oneDNN has no implementation for (bf16 on some shapes): those fall back to emulation.
    private var unsupported: Set<OperationKey> = []
    private let lock = NSLock()

    func operation(_ key: OperationKey) -> OpaquePointer? {
        lock.lock()
        defer { lock.unlock() }
        if let op = operations[key] { return op }
        if unsupported.contains(key) { return nil }
        var message = [CChar](repeating: 0, count: 256)
        let dt: Int32 = key.precision == .bf16 ? Int32(KD_DT_BF16) : Int32(KD_DT_F32)
        let d = key.dims.map { Int64($0) }
        let op: OpaquePointer?
        switch key.kind {
        case .convolution:
            op = kd_conv_create(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], dt,
                                key.plainLayout ? 1 : 0, bridgeLayout(key.inputLayout), bridgeLayout(key.outputLayout),
                                key.bias ? 1 : 0, &message, message.count)
        case .linear:
            op = kd_linear_create(d[0], d[1], d[2], dt, key.bias ? 1 : 0, &message, message.count)
        case .matmul:
            op = kd_matmul_create(d[0], d[1], d[2], d[3], d[4], Int32(d[5]), d[6], Float(bitPattern: UInt32(d[7])),
                                  &message, message.count)
        }
        guard let op else {
            // fp32 always has an implementation; only bf16 may lack one, and then runs emulated.
            if key.precision == .fp32 { fatalError("oneDNN: \(key.kind) \(key.dims): \(String(cString: message))") }
            unsupported.insert(key)
            return nil
        }
        operations[key] = op
        return op
    }
}

private func bridgeLayout(_ layout: Layout) -> Int32 {
    layout == .planar ? Int32(KD_LAYOUT_NCHW) : Int32(KD_LAYOUT_NHWC)
}

/// Runs a cached primitive on float32 activations; `weight` supplies weights in the primitive's layout.
func runOperation(_ op: OpaquePointer, src: UnsafePointer<Float>, weight: Weight, bias: Tensor?,
                  dst: UnsafeMutablePointer<Float>) {
    var message = [CChar](repeating: 0, count: 256)
    withWorkspace(for: op) { workspace in
        weight.withPrepared(for: op) { prepared in
            if kd_op_run(op, src, prepared, bias?.data, dst, workspace, &message, message.count) != 0 {
                fatalError("oneDNN: \(String(cString: message))")
            }
        }
    }
}

/// Runs `body` with the workspace a run of `op` needs (from the pool; nil when it needs none).
func withWorkspace(for op: OpaquePointer, _ body: (UnsafeMutableRawPointer?) -> Void) {
    let bytes = kd_op_workspace_bytes(op)
    let workspace = bytes > 0 ? MemoryPool.shared.acquire(bytes: bytes) : nil
    defer { if let workspace { MemoryPool.shared.release(workspace) } }
    body(workspace)
}

/// The float32 bits of `bits` rounded to the nearest bfloat16 (ties to even), low 16 bits zero; NaN stays NaN.
@inline(__always)
func bfloat16RoundedBits(_ bits: UInt32) -> UInt32 {
    if bits & 0x7F80_0000 == 0x7F80_0000 { return bits & 0xFFFF_0000 | (bits & 0xFFFF == 0 ? 0 : 0x40_0000) }
    return (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
}

/// Round-to-nearest-even to bfloat16, kept as float32 values (the emulated bf16 path's operands).
public func roundToBFloat16(_ p: UnsafeMutablePointer<Float>, count: Int) {
    parallelFor(count, minPerThread: 1 << 15) { r in
        let raw = UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self)
        for i in r { raw[i] = bfloat16RoundedBits(raw[i]) }
    }
}

/// float32 -> bfloat16 values (the same rounding), for operands oneDNN reads as bf16 in place.
func convertToBFloat16(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<UInt16>) {
    parallelFor(count, minPerThread: 1 << 15) { r in
        let raw = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
        for i in r { dst[i] = UInt16(truncatingIfNeeded: bfloat16RoundedBits(raw[i]) >> 16) }
    }
}

/// The precision `weight`'s layer runs in here: native bf16, emulated bf16, or fp32.
enum ExecutionMode { case fp32, bf16Native, bf16Emulated }

func executionMode(of weight: Weight) -> ExecutionMode {
    guard weight.precision == .bf16 else { return .fp32 }
    return ComputeBackend.nativeBF16 ? .bf16Native : .bf16Emulated
}

/// A copy of `x` rounded to bfloat16 values, from the pool; release with `MemoryPool.shared.releaseFloats`.
func bfloat16RoundedCopy(_ x: Tensor) -> UnsafeMutablePointer<Float> {
    let copy = MemoryPool.shared.acquireFloats(x.count)
    copy.update(from: x.data, count: x.count)
    roundToBFloat16(copy, count: x.count)
    return copy
}
