import DatanetCrypto

/// Exact KNN-Shapley values (Jia et al., "Efficient Task-Specific Data Valuation for Nearest
/// Neighbor Algorithms", VLDB 2019, Theorem 1) under the utility of an unweighted K-nearest-
/// neighbour classifier: U(S) = (1/K)·#{the min(K, |S|) points of S nearest the test point that
/// carry its label}. schema/valuation.md gives every rule so other implementations reproduce
/// each number.
public enum KNNShapley {
    /// The values of `n` training points for one test point, in training order: `order` lists
    /// the training indices nearest first (ties already broken by training order), `matches(i)`
    /// whether training point i carries the test label. The recursion, in float64 and this
    /// order of operations: s[α_N] = m(α_N) / N when N ≥ K, else m(α_N) / K (the farthest
    /// point counts only in subsets smaller than K), then for i = N−1 down to 1
    /// s[α_i] = s[α_{i+1}] + (m(α_i) − m(α_{i+1})) / max(K, i) — the paper's (1/K)·min(K, i)/i
    /// with one division, as pyDVL computes it, so the two agree to the last bit.
    public static func values(order: [Int], k: Int, matches: (Int) -> Bool) -> [Double] {
        let n = order.count
        var s = [Double](repeating: 0, count: n)
        guard n > 0, k > 0 else { return s }
        var next = Double(matches(order[n - 1]) ? 1 : 0)
        var value = next / Double(n >= k ? n : k)
        s[order[n - 1]] = value
        var i = n - 1
        while i >= 1 {
            let here = Double(matches(order[i - 1]) ? 1 : 0)
            value = value + (here - next) / Double(max(k, i))
            s[order[i - 1]] = value
            next = here
            i -= 1
        }
        return s
    }

    /// The utility U(S) of a subset for one test point: `ranked` is S nearest first.
    public static func utility(ranked: [Int], k: Int, matches: (Int) -> Bool) -> Double {
        guard k > 0 else { return 0 }
        return Double(ranked.prefix(k).filter(matches).count) / Double(k)
    }

    /// Training indices sorted nearest first: by distance, ties by training index.
    public static func ranking(_ distances: [Double]) -> [Int] {
        struct Ranked { let distance: Double, index: Int }
        var r = distances.enumerated().map { Ranked(distance: $0.element, index: $0.offset) }
        r.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.index < $1.index }
        return r.map(\.index)
    }

    /// Test points a block: the unit of work on the other cores, and of summation.
    public static let block = 64

    /// Mean values over test points: each block of `block` test points summed in test order,
    /// the blocks' sums added in block order, then divided by the number of test points (the
    /// same on any number of cores). Blocks run on every core.
    public static func meanValues(count n: Int, tests: Int, k: Int, distances: @escaping @Sendable (Int) throws -> [Double],
                                  matches: @escaping @Sendable (_ test: Int, _ train: Int) -> Bool) throws -> [Double] {
        var total = [Double](repeating: 0, count: n)
        guard tests > 0 else { return total }
        let blocks = stride(from: 0, to: tests, by: block).map { $0..<min(tests, $0 + block) }
        let sums = try Parallel.map(blocks, grain: 1) { range -> [Double] in
            var sum = [Double](repeating: 0, count: n)
            for t in range {
                let v = values(order: ranking(try distances(t)), k: k) { matches(t, $0) }
                for i in 0..<n { sum[i] += v[i] }
            }
            return sum
        }
        for s in sums { for i in 0..<n { total[i] += s[i] } }
        return total.map { $0 / Double(tests) }
    }
}
