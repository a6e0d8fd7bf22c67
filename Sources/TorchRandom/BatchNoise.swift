// The random source of a batch of samples. torch's randn(shape, generator) draws a whole batch from one generator;
// `num_images` wants image k of a batch to draw exactly what a run of image k alone draws, so each sample can also
// have a generator of its own.

public struct BatchNoise {
    /// One generator for the whole batch, or one per sample (sample i draws from generators[i]).
    public let generators: [TorchGenerator]

    /// torch.randn(shape, generator=generator): the whole batch from one generator.
    public init(_ generator: TorchGenerator) { generators = [generator] }

    /// One generator per sample of the batch, in batch order.
    public init(perSample generators: [TorchGenerator]) {
        precondition(!generators.isEmpty, "a batch needs at least one generator")
        self.generators = generators
    }

    /// Fills `count` floats, `samples` equal slabs in batch order, as torch.randn of each sample's shape would from
    /// its own generator (or of the whole shape from the single generator).
    public func fill(_ data: UnsafeMutablePointer<Float>, count: Int, samples: Int) {
        guard generators.count > 1 else {
            generators[0].fillNormal(data, count)
            return
        }
        precondition(samples == generators.count && count % samples == 0, "one generator per sample")
        let slab = count / samples
        for (index, generator) in generators.enumerated() { generator.fillNormal(data + index * slab, slab) }
    }
}
