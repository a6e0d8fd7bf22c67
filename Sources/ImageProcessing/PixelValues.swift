// transformers' rescale and normalize on the PIL path (image_transforms.rescale and normalize): the 8-bit value
// times the rescale factor in float64, stored as float32, then (value - mean) / std in float32. One rule for
// every image processor we reproduce.
import TensorCore

extension PixelImage {
    /// An RGB image as pixel_values [1, 3, H, W].
    public func pixelValues(rescaleFactor: Double = 1.0 / 255.0, mean: [Float], std: [Float]) -> Tensor {
        precondition(channels == 3 && mean.count == 3 && std.count == 3, "pixelValues of \(channels) channels")
        let plane = width * height
        let out = Tensor(shape: [1, 3, height, width])
        for i in 0..<plane {
            for c in 0..<3 {
                let rescaled = Float(Double(pixels[i * 3 + c]) * rescaleFactor)
                out.data[c * plane + i] = (rescaled - mean[c]) / std[c]
            }
        }
        return out
    }
}
