import Foundation

/// A k-nearest-neighbour classifier over a training set's examples (schema/training.md "kNN"):
/// labeled text by TF-IDF cosine distance, numeric examples by squared Euclidean distance on
/// standardized features. It keeps integers and raw features; every double is computed here at
/// query time in a fixed order, so one artifact answers the same on every machine.
public struct KNNModel: Sendable {
    public enum Scale: String, Sendable { case standard, none }

    /// The examples' features: text bucket counts, or numeric rows.
    public enum Features: Sendable {
        case text(documents: [[BucketCount]])
        case numeric(rows: [[Double]], scale: Scale)
    }

    public let k: Int
    public let features: Features
    /// Each example's label and source, in training order.
    public let labels: [String]
    public let sources: [ExampleSource]

    // Derived at load, never stored: text postings and norms, numeric means and deviations.
    private let postings: [UInt32: [(doc: Int32, weight: Double)]]
    private let idf: [UInt32: Double]
    private let defaultIDF: Double
    private let norms: [Double]
    private let mean: [Double], deviation: [Double]
    /// Numeric rows standardized: (x − mean) / deviation, feature by feature, row after row in
    /// one buffer.
    private let scaled: [Double]

    public var count: Int { labels.count }

    public init(k: Int, features: Features, labels: [String], sources: [ExampleSource]) {
        (self.k, self.features, self.labels, self.sources) = (k, features, labels, sources)
        var postings = [UInt32: [(doc: Int32, weight: Double)]](), idf = [UInt32: Double](), norms = [Double]()
        var mean = [Double](), deviation = [Double](), scaled = [Double]()
        var defaultIDF = 1.0
        switch features {
        case .text(let documents):
            // Document frequencies as integers; idf(b) = ln((1 + N) / (1 + df(b))) + 1.
            var df = [UInt32: Int]()
            for d in documents { for c in d { df[c.bucket, default: 0] += 1 } }
            let n = Double(documents.count)
            for (b, f) in df { idf[b] = Foundation.log((1 + n) / (1 + Double(f))) + 1 }
            defaultIDF = Foundation.log(1 + n) + 1
            norms.reserveCapacity(documents.count)
            for (i, d) in documents.enumerated() {
                var sq = 0.0
                for c in d {
                    let w = Double(c.count) * idf[c.bucket]!
                    sq += w * w
                    postings[c.bucket, default: []].append((Int32(i), w))
                }
                norms.append(sq.squareRoot())
            }
        case .numeric(let rows, let scale):
            let width = rows.first?.count ?? 0
            mean = [Double](repeating: 0, count: width)
            deviation = [Double](repeating: 1, count: width)
            if scale == .standard, !rows.isEmpty {
                for j in 0..<width {
                    var sum = 0.0
                    for r in rows { sum += r[j] }
                    let m = sum / Double(rows.count)
                    var sq = 0.0
                    for r in rows { let d = r[j] - m; sq += d * d }
                    let sd = (sq / Double(rows.count)).squareRoot()
                    mean[j] = m
                    deviation[j] = sd > 0 ? sd : 1 // a constant feature is left unscaled
                }
            }
            scaled.reserveCapacity(rows.count * width)
            for r in rows { for j in 0..<width { scaled.append((r[j] - mean[j]) / deviation[j]) } }
        }
        (self.postings, self.idf, self.defaultIDF, self.norms) = (postings, idf, defaultIDF, norms)
        (self.mean, self.deviation, self.scaled) = (mean, deviation, scaled)
    }

    /// A query: text, or one numeric row (as many values as the training rows).
    public enum Query: Sendable {
        case text(String)
        case numeric([Double])
    }

    /// The distance from `query` to every example, in training order.
    public func distances(to query: Query) throws(AttributionError) -> [Double] {
        switch (features, query) {
        case (.text(let documents), .text(let text)):
            let q = TextFeatures.counts(text)
            var qsq = 0.0
            var dots = [Double](repeating: 0, count: documents.count)
            for c in q {
                let w = Double(c.count) * (idf[c.bucket] ?? defaultIDF)
                qsq += w * w
                for p in postings[c.bucket] ?? [] { dots[Int(p.doc)] += w * p.weight }
            }
            let qn = qsq.squareRoot()
            return dots.indices.map { i in
                let denominator = qn * norms[i]
                return denominator > 0 ? 1 - dots[i] / denominator : 1
            }
        case (.numeric(let rows, _), .numeric(let values)):
            let width = mean.count
            guard values.count == width, !rows.isEmpty else {
                throw .query("the model's examples have \(width) features; the query has \(values.count)")
            }
            let z = values.indices.map { (values[$0] - mean[$0]) / deviation[$0] }
            // Summed in feature order, each square rounded before it is added (no fused multiply-add).
            var out = [Double](repeating: 0, count: rows.count)
            scaled.withUnsafeBufferPointer { s in
                z.withUnsafeBufferPointer { q in
                    for i in 0..<rows.count {
                        var sum = 0.0
                        let base = i * width
                        for j in 0..<width {
                            let d = s[base + j] - q[j]
                            let sq = d * d
                            sum = sum + sq
                        }
                        out[i] = sum
                    }
                }
            }
            return out
        case (.text, .numeric):
            throw .query("a text model takes text, not numbers")
        case (.numeric, .text):
            throw .query("a numeric model takes a row of numbers, not text")
        }
    }

    /// The prediction for `query`: the label most of the K nearest carry (a tie goes to the
    /// tied label whose nearest example comes first), and those K, nearest first (ties by
    /// training order).
    public func predict(_ query: Query) throws(AttributionError) -> (label: String, neighbours: [(index: Int, distance: Double)]) {
        let d = try distances(to: query)
        let nearest = Self.nearest(d, k)
        var votes = [String: Int]()
        for n in nearest { votes[labels[n], default: 0] += 1 }
        let best = votes.values.max() ?? 0
        let label = nearest.map { labels[$0] }.first { votes[$0] == best } ?? ""
        return (label, nearest.map { ($0, d[$0]) })
    }

    /// The `k` smallest distances' indices, nearest first, ties by index, without sorting all.
    static func nearest(_ d: [Double], _ k: Int) -> [Int] {
        guard k > 0 else { return [] }
        var best = [Int]()
        best.reserveCapacity(min(k, d.count) + 1)
        func before(_ a: Int, _ b: Int) -> Bool { d[a] != d[b] ? d[a] < d[b] : a < b }
        for i in d.indices {
            if best.count == k, !before(i, best[k - 1]) { continue }
            var at = best.count
            while at > 0 && before(i, best[at - 1]) { at -= 1 }
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

/// Why an attribution request failed.
public enum AttributionError: Error, Equatable, Sendable, CustomStringConvertible {
    case query(String)
    public var description: String {
        switch self {
        case .query(let why): "the query does not fit the model: \(why)"
        }
    }
}
