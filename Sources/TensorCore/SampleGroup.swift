// How many samples of a batch one convolution or matrix product takes. oneDNN picks its GEMM kernel by the number of
// rows (one, up to 15, up to a few hundred, more: each sums in its own order) and divides a single image's
// convolution among the threads differently from a batch's, so the same sample rounds differently in a batch of
// another size. A decoder run of one image feeds the UNet its classifier-free-guidance pair (or the image alone);
// a batch of N images (num_images) sets the group to that size around its UNet calls, so every product and
// convolution sees exactly the batch size a run of one image gives it, and image k gets the bits of its run alone.

public enum SampleGroup {
    /// Samples per call; nil: the whole batch in one call.
    @TaskLocal public static var size: Int?

    /// Calls `body(first, count)` for consecutive groups of the current size over `samples` samples (one call for
    /// all of them when no group is set or the batch is no larger).
    static func forEach(samples: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
        let group = max(callSize(samples: samples), 1)
        var first = 0
        repeat {
            body(first, min(group, samples - first))
            first += group
        } while first < samples
    }

    /// The samples one call takes: the group size, or the whole batch.
    static func callSize(samples: Int) -> Int { min(size.map { max($0, 1) } ?? samples, samples) }
}
