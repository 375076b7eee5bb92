// valuation-peer TRAIN.csv TEST.csv K: KNN-Shapley values (schema/valuation.md) of every
// training row of TRAIN.csv against the labeled rows of TEST.csv, unscaled squared Euclidean
// distance, one value a line in training order, printed with round-trip precision. What
// tools/interop/valuation compares with pyDVL's KNN-Shapley (until `datanet value` takes a model).
import DatanetAttribution
import Foundation

func rows(_ path: String) throws -> [(values: [Double], label: String)] {
    guard let data = FileManager.default.contents(atPath: path) else { throw AttributionError.query("cannot read \(path)") }
    guard case .numeric(_, let rows) = try TrainingContent.read(name: path, bytes: Array(data)) else { throw AttributionError.query("\(path) is not a numeric CSV") }
    return rows.map { ($0.values, $0.label) }
}

let args = CommandLine.arguments
guard args.count == 4, let k = Int(args[3]), k > 0 else {
    FileHandle.standardError.write(Data("usage: valuation-peer TRAIN.csv TEST.csv K\n".utf8))
    exit(2)
}
do {
    let train = try rows(args[1]), test = try rows(args[2])
    let model = KNNModel(k: k, features: .numeric(rows: train.map(\.values), scale: .none), labels: train.map(\.label), sources: [])
    var numbers = [String: Int32]()
    func number(_ label: String) -> Int32 { if let n = numbers[label] { return n }; numbers[label] = Int32(numbers.count); return numbers[label]! }
    let trainLabels = train.map { number($0.label) }, testLabels = test.map { number($0.label) }
    let values = try KNNShapley.meanValues(trainLabels: trainLabels, testLabels: testLabels, k: k,
                                           distances: { t in try model.distances(to: .numeric(test[t].values)) })
    var out = ""
    for v in values { out += String(format: "%.17g\n", v) }
    FileHandle.standardOutput.write(Data(out.utf8))
} catch {
    FileHandle.standardError.write(Data("valuation-peer: \(error)\n".utf8))
    exit(1)
}
