// depth: transformers' depth-estimation pipeline (DPT or Depth Anything) on a picture, saved as the pipeline's 8-bit
// depth picture at the picture's size (near = bright), so that a user can look at the depth map, edit it and pass
// it to controlnet-depth --depth.
import KandinskyPluginABI
import PluginSupport

@_cdecl("kandinsky_plugin_entry")
public func kandinsky_plugin_entry() -> UnsafePointer<kd_plugin_entry_t> {
    makeEntry([
        PluginDefinition(
            id: "depth", name: "Depth estimation",
            description:
                "Estimates a depth map from a picture (transformers' depth-estimation pipeline): one grey channel "
                + "at the picture's size, the nearest point white and the farthest black.",
            aliases: [],
            inputs: [InputDecl("image", KD_INPUT_IMAGE, help: "the picture to estimate depth for")],
            params: [CommonParams.depthModel], run: run)
    ])
}

func run(_ req: Request) throws {
    guard let image = req.input("image") else { throw PluginFailure("depth needs a picture (--image)") }
    let estimator = try req.depthEstimator()
    try req.estimatedDepth(image, estimator: estimator) { picture in
        let (width, height) = (Int(picture.width), Int(picture.height))
        let out = try req.allocateOutput(width: width, height: height, channels: 1)
        for y in 0..<height {
            (out.pointee.data + y * Int(out.pointee.row_bytes))
                .update(from: picture.data + y * Int(picture.row_bytes), count: width)
        }
    }
}
