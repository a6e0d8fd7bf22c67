// A model that produced NaN or infinity, reported with the stage and step where it first appeared.
public struct NumericsError: Error, CustomStringConvertible {
    public let stage: String
    public let step: Int
    public let steps: Int

    public init(stage: String, step: Int, steps: Int) {
        self.stage = stage
        self.step = step
        self.steps = steps
    }

    public var description: String {
        "the model produced NaN or infinity at \(stage) step \(step) of \(steps) (broken weights or config?)"
    }
}
