// attribution-bench (run by tools/bench/attribution; not a test): KNN-Shapley of every training
// example of a numeric kNN model against a labeled test set (schema/valuation.md), and
// attributed inference latency on a text model.
//   attribution-bench value TRAIN.csv TEST.csv K OUT   values written to OUT, one a line; timings on stdout
//   attribution-bench infer N                          N synthetic labeled texts; median and p99 of 200 queries
import DatanetAttribution
import Foundation

func wall() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func rows(_ path: String) throws -> [(values: [Double], label: String)] {
    guard let data = FileManager.default.contents(atPath: path),
          case .numeric(_, let rows) = try TrainingContent.read(name: path, bytes: Array(data)) else { throw AttributionError.query("cannot read \(path)") }
    return rows.map { ($0.values, $0.label) }
}

let args = CommandLine.arguments
switch args.count > 1 ? args[1] : "" {
case "value" where args.count == 6:
    var t = wall()
    let train = try rows(args[2]), test = try rows(args[3])
    let read = wall() - t
    let k = Int(args[4])!
    t = wall()
    let model = KNNModel(k: k, features: .numeric(rows: train.map(\.values), scale: .none), labels: train.map(\.label), sources: [])
    let build = wall() - t
    var numbers = [String: Int32]()
    func number(_ label: String) -> Int32 { if let n = numbers[label] { return n }; numbers[label] = Int32(numbers.count); return numbers[label]! }
    let trainLabels = train.map { number($0.label) }, testLabels = test.map { number($0.label) }
    t = wall()
    let values = try KNNShapley.meanValues(trainLabels: trainLabels, testLabels: testLabels, k: k,
                                           distances: { i in try model.distances(to: .numeric(test[i].values)) })
    let value = wall() - t
    try values.map { String(format: "%.17g", $0) }.joined(separator: "\n").write(toFile: args[5], atomically: true, encoding: .utf8)
    print(String(format: "datanet: read %.2f s, train %.3f s, value %.2f s (%d training, %d test, K %d)", read, build, value, train.count, test.count, k))
case "infer" where args.count == 3:
    let n = Int(args[2])!
    var rng = SystemRandomNumberGenerator()
    let vocabulary = (0..<20_000).map { "w\($0)" }
    func text() -> String { (0..<120).map { _ in vocabulary[Int.random(in: 0..<vocabulary.count, using: &rng)] }.joined(separator: " ") }
    var t = wall()
    let docs = (0..<n).map { _ in TextFeatures.counts(text()) }
    let model = KNNModel(k: 5, features: .text(documents: docs), labels: (0..<n).map { "c\($0 % 10)" }, sources: [])
    print(String(format: "text model of %d examples built in %.2f s", n, wall() - t))
    var times = [Double]()
    for _ in 0..<200 {
        let q = text()
        t = wall()
        _ = try model.predict(.text(q))
        times.append(wall() - t)
    }
    times.sort()
    print(String(format: "infer: median %.2f ms, p99 %.2f ms over 200 queries (in process)", times[100] * 1000, times[197] * 1000))
case "sais" where args.count == 3:
    // The suffix array of a file's bytes (documents joined with 0xFF by the caller).
    let text = Array(FileManager.default.contents(atPath: args[2])!)
    let t = wall()
    // Uninitialized, as a shard build allocates it (the sorter's first pass touches it).
    let sa = UnsafeMutableBufferPointer<Int32>.allocate(capacity: text.count)
    defer { sa.deallocate() }
    text.withUnsafeBufferPointer { SuffixSorter.sort($0, into: sa) }
    let seconds = wall() - t
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    // Checked exactly (in linear time) after the peak is read.
    let valid = SuffixSorter.isSuffixArray(sa, of: text)
    print(String(format: "datanet sa-is: %d bytes in %.2f s, %.1f MB/s, peak RSS %.0f MiB (%.2f bytes per input byte), %@",
                 text.count, seconds, Double(text.count) / seconds / 1e6, Double(usage.ru_maxrss) / 1024, Double(usage.ru_maxrss) * 1024 / Double(max(1, text.count)),
                 valid ? "checked: the suffix array is correct" : "CHECK FAILED: not the suffix array"))
    if !valid { exit(1) }
case "count" where args.count >= 4:
    // count latency in process over mapped shards: attribution-bench count QUERIES SHARD...
    let queries = String(decoding: FileManager.default.contents(atPath: args[2])!, as: UTF8.self).split(separator: "\n").map { Array($0.utf8) }
    let index = SpanIndex(shards: try args[3...].map { try SpanShard(mapping: $0) })
    var times = [Double](), total = 0
    for q in queries { _ = index.count(q) } // pages in, as a warm server's would be
    for q in queries {
        let t = wall()
        total &+= index.count(q)
        times.append((wall() - t) * 1e6)
    }
    times.sort()
    print(String(format: "datanet count: %d queries, median %.2f µs, p99 %.2f µs (sum of counts %d)", times.count, times[times.count / 2], times[times.count * 99 / 100], total))
case "attribute" where args.count >= 4:
    // attribution latency in process: attribution-bench attribute TEXTFILE SHARD...
    let text = Array(FileManager.default.contents(atPath: args[2])!)
    let index = SpanIndex(shards: try args[3...].map { try SpanShard(mapping: $0) })
    var times = [Double](), spans = 0
    for _ in 0..<30 {
        let t = wall()
        spans = SpanAttribution(index, text: text, minimum: 20).spans.count
        times.append((wall() - t) * 1e3)
    }
    times.sort()
    print(String(format: "datanet attribute: %d bytes, %d spans, median %.2f ms, p90 %.2f ms over 30 runs", text.count, spans, times[15], times[27]))
default:
    print("usage: attribution-bench value TRAIN.csv TEST.csv K OUT | attribution-bench infer N")
    exit(2)
}
