// Reuse of large buffers (tensor storage, layout conversions, oneDNN scratch). A diffusion step allocates and frees
// the same few sizes over and over; fresh multi-megabyte allocations come from the kernel as new zeroed pages, and
// at 512x512 clearing and faulting those pages was 27% of a text-to-image run's time (perf, docs/performance.md).
//
// The pool's idle memory is bounded: on a miss it frees idle buffers (the smallest that makes room, else the
// largest) until live + idle + the new buffer fit within the peak of live bytes plus a quarter plus `spareBytes`
// (256 MB).
// `trim()` returns every idle buffer, for long-lived processes between jobs.
import Foundation

public final class MemoryPool: @unchecked Sendable {
    public static let shared = MemoryPool()

    /// Below this, the C allocator's own free lists are fast and the pool is bypassed.
    static let minimumPooledBytes = 1 << 20
    /// A reused buffer may be at most this much larger than the request, in eighths (8: twice its size), so a small
    /// request never pins a huge buffer.
    private static let slackEighths = 8
    /// Idle bytes always allowed beyond a quarter of the peak (see `acquire`).
    let spareBytes: Int

    private struct Block {
        let bytes: Int
        let pointer: UnsafeMutableRawPointer
    }

    /// Idle buffers, oldest first.
    private var idle: [Block] = []
    private var idleBytes = 0
    /// Pooled buffers handed out and not yet released, with their sizes.
    private var live: [UnsafeMutableRawPointer: Int] = [:]
    private var liveBytes = 0
    /// The most pooled-size bytes live at once since the last `trim()`.
    private var peakLive = 0
    private let lock = NSLock()

    /// `shared` is the process's pool; separate pools exist for tests.
    public init(spareBytes: Int = 256 << 20) {
        self.spareBytes = spareBytes
    }

    /// A 64-byte-aligned buffer of at least `bytes` bytes, uninitialised; give it back with `release(_:)`.
    public func acquire(bytes: Int) -> UnsafeMutableRawPointer {
        let size = MemoryPool.roundedSize(bytes)
        guard size >= MemoryPool.minimumPooledBytes else {
            return UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        }
        lock.lock()
        let limit = size + size / 8 * MemoryPool.slackEighths
        var best: Int?
        for i in idle.indices where idle[i].bytes >= size && idle[i].bytes <= limit {
            if best == nil || idle[i].bytes < idle[best!].bytes { best = i }
        }
        if let best {
            let block = idle.remove(at: best)
            idleBytes -= block.bytes
            liveBytes += block.bytes
            live[block.pointer] = block.bytes
            lock.unlock()
            return block.pointer
        }
        // Resident bytes may exceed the most the live buffers ever needed by a quarter plus `spareBytes`: room for the
        // mix of sizes a UNet step cycles through.
        peakLive = max(peakLive, liveBytes + size)
        let allowed = peakLive + peakLive / 4 + spareBytes
        var evicted: [Block] = []
        while liveBytes + idleBytes + size > allowed, !idle.isEmpty {
            // The smallest idle buffer whose freeing makes room, else the largest: as few bytes lost as possible.
            let excess = liveBytes + idleBytes + size - allowed
            let sufficient = idle.indices.filter { idle[$0].bytes >= excess }
            let victim = sufficient.min { idle[$0].bytes < idle[$1].bytes }
                ?? idle.indices.max { idle[$0].bytes < idle[$1].bytes }!
            let block = idle.remove(at: victim)
            idleBytes -= block.bytes
            evicted.append(block)
        }
        liveBytes += size
        lock.unlock()
        for block in evicted { block.pointer.deallocate() }
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        lock.withLock { live[pointer] = size }
        return pointer
    }

    /// Gives back a buffer from `acquire`.
    public func release(_ pointer: UnsafeMutableRawPointer) {
        let pooled: Bool = lock.withLock {
            guard let size = live.removeValue(forKey: pointer) else { return false }
            idle.append(Block(bytes: size, pointer: pointer))
            idleBytes += size
            liveBytes -= size
            return true
        }
        if !pooled { pointer.deallocate() }
    }

    /// Float buffers: `acquire(bytes:)` for `count` floats.
    public func acquireFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        acquire(bytes: count * 4).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public func releaseFloats(_ pointer: UnsafeMutablePointer<Float>) {
        release(UnsafeMutableRawPointer(pointer))
    }

    /// Frees every idle buffer.
    public func trim() {
        let blocks = lock.withLock {
            let all = idle
            idle.removeAll()
            idleBytes = 0
            peakLive = liveBytes
            return all
        }
        for block in blocks { block.pointer.deallocate() }
    }

    /// Bytes held idle now.
    public var idleByteCount: Int { lock.withLock { idleBytes } }

    /// Sizes are whole pages, so that buffers of nearly equal requests are interchangeable.
    private static func roundedSize(_ bytes: Int) -> Int {
        let page = 4096
        return (max(bytes, 1) + page - 1) / page * page
    }
}
