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

    /// Training indices sorted nearest first: by distance, ties by training index. A stable
    /// radix sort of the distances' order-preserving bit patterns (eight passes of a byte, a
    /// pass skipped where every key has the same byte): the order a comparison sort on
    /// (distance, index) gives, in linear time.
    public static func ranking(_ distances: [Double]) -> [Int] {
        let n = distances.count
        var keys = distances.map { d -> UInt64 in
            let b = d == 0 ? 0 : d.bitPattern // −0 ties with +0, as it compares
            return b & (1 << 63) == 0 ? b | (1 << 63) : ~b // negative below positive, in order
        }
        var index = Array(0..<n)
        guard n > 1 else { return index }
        var keys2 = [UInt64](repeating: 0, count: n), index2 = [Int](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 256)
        for pass in 0..<8 {
            let shift = UInt64(8 * pass)
            let moved = keys.withUnsafeMutableBufferPointer { k in
                index.withUnsafeMutableBufferPointer { x in
                    keys2.withUnsafeMutableBufferPointer { k2 in
                        index2.withUnsafeMutableBufferPointer { x2 in
                            counts.withUnsafeMutableBufferPointer { c -> Bool in
                                for i in 0..<256 { c[i] = 0 }
                                for i in 0..<n { c[Int(truncatingIfNeeded: k[i] >> shift) & 0xff] += 1 }
                                if c[Int(truncatingIfNeeded: k[0] >> shift) & 0xff] == n { return false } // every key alike here
                                var total = 0
                                for i in 0..<256 { let v = c[i]; c[i] = total; total += v }
                                for i in 0..<n {
                                    let b = Int(truncatingIfNeeded: k[i] >> shift) & 0xff
                                    let at = c[b]
                                    c[b] = at + 1
                                    k2[at] = k[i]
                                    x2[at] = x[i]
                                }
                                return true
                            }
                        }
                    }
                }
            }
            if moved { swap(&keys, &keys2); swap(&index, &index2) }
        }
        return index
    }

    /// Test points a block: the unit of work on the other cores, and of summation.
    public static let block = 64

    /// Mean values over test points: each block of `block` test points summed in test order,
    /// the blocks' sums added in block order, then divided by the number of test points (the
    /// same on any number of cores). Blocks run on every core. Labels are given as numbers
    /// (equal labels, equal numbers); `distances(t)` gives test point t's distance to each
    /// training point.
    public static func meanValues(trainLabels: [Int32], testLabels: [Int32], k: Int,
                                  distances: @escaping @Sendable (Int) throws -> [Double]) throws -> [Double] {
        let n = trainLabels.count, tests = testLabels.count
        var total = [Double](repeating: 0, count: n)
        guard tests > 0 else { return total }
        // One block's sum: the recursion of `values` for each test point, each value added
        // where it lands (one addition per training point per test point, in test order).
        func blockSum(_ range: Range<Int>) throws -> [Double] {
            var sum = [Double](repeating: 0, count: n)
            guard n > 0, k > 0 else { return sum }
            for t in range {
                let order = ranking(try distances(t))
                let label = testLabels[t]
                sum.withUnsafeMutableBufferPointer { s in
                    trainLabels.withUnsafeBufferPointer { y in
                        var next = Double(y[order[n - 1]] == label ? 1 : 0)
                        var value = next / Double(n >= k ? n : k)
                        s[order[n - 1]] += value
                        var i = n - 1
                        while i >= 1 {
                            let here = Double(y[order[i - 1]] == label ? 1 : 0)
                            value = value + (here - next) / Double(max(k, i))
                            s[order[i - 1]] += value
                            next = here
                            i -= 1
                        }
                    }
                }
            }
            return sum
        }
        let blocks = stride(from: 0, to: tests, by: block).map { $0..<min(tests, $0 + block) }
        // In waves of 8 blocks, each wave's sums added in block order as it ends: memory stays
        // at 8 sums of n, and the result is the one of all blocks at once.
        for wave in stride(from: 0, to: blocks.count, by: 8) {
            for s in try Parallel.map(Array(blocks[wave..<min(blocks.count, wave + 8)]), grain: 1, blockSum) {
                for i in 0..<n { total[i] += s[i] }
            }
        }
        return total.map { $0 / Double(tests) }
    }
}
