// Swift side of the benchmark (bench/run.sh): the same text2img as bench/torch_text2img.py on bench/out/models.
// usage: kandinsky-bench SIZE OUT.png
import Foundation
import ImageIO
import ImageProcessing
import Pipelines
import TensorCore
import TorchRandom

let t0 = Date()
let args = CommandLine.arguments
guard args.count >= 3, let size = Int(args[1]) else {
    FileHandle.standardError.write("usage: kandinsky-bench SIZE OUT.png\n".data(using: .utf8)!)
    exit(2)
}
let root = "bench/out/models"
let prior = try PriorPipeline(folder: root + "/prior")
let decoder = try DecoderPipeline(folder: root + "/decoder")
let t1 = Date()
let g = TorchGenerator(seed: 42)
let (emb, neg) = try prior(prompt: "a red cat, 4k photo", negativePrompt: nil, steps: 5, guidance: 4, generator: g)
let t2 = Date()
let image = try decoder.text2img(.init(imageEmbeds: emb, negativeImageEmbeds: neg), height: size, width: size, steps: 10, guidance: 4,
                                 generator: g)
let t3 = Date()
let (h, w) = (image.dim(2), image.dim(3))
var px = PixelImage(width: w, height: h, channels: 3)
for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[x, y, c] = UInt8((image.data[(c * h + y) * w + x] * 255).rounded()) } } }
try ImageFiles.write(px, to: args[2])
print(String(format: "swift: load %.2fs, prior %.2fs, decoder %.2fs, total %.2fs", t1.timeIntervalSince(t0), t2.timeIntervalSince(t1),
             t3.timeIntervalSince(t2), Date().timeIntervalSince(t0)))
