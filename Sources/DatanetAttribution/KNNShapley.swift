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
    /// s[α_i] = s[α_{i+1}] + ((m(α_i) − m(α_{i+1})) / K) · (min(K, i) / i).
    public static func values(order: [Int], k: Int, matches: (Int) -> Bool) -> [Double] {
        let n = order.count
        var s = [Double](repeating: 0, count: n)
        guard n > 0, k > 0 else { return s }
        let kd = Double(k)
        var next = Double(matches(order[n - 1]) ? 1 : 0)
        var value = next / Double(n >= k ? n : k)
        s[order[n - 1]] = value
        var i = n - 1
        while i >= 1 {
            let here = Double(matches(order[i - 1]) ? 1 : 0)
            value = value + ((here - next) / kd) * (Double(min(k, i)) / Double(i))
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
        distances.indices.sorted { distances[$0] != distances[$1] ? distances[$0] < distances[$1] : $0 < $1 }
    }

    /// Mean values over test points (summed in test order, then divided by their count).
    public static func meanValues(count n: Int, tests: Int, k: Int, distances: (Int) -> [Double], matches: (_ test: Int, _ train: Int) -> Bool) -> [Double] {
        var total = [Double](repeating: 0, count: n)
        guard tests > 0 else { return total }
        for t in 0..<tests {
            let v = values(order: ranking(distances(t)), k: k) { matches(t, $0) }
            for i in 0..<n { total[i] += v[i] }
        }
        return total.map { $0 / Double(tests) }
    }
}
