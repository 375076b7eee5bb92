@testable import DatanetAttribution
import DatanetTestSupport
import Testing

/// KNN-Shapley (schema/valuation.md) against the definition: the Shapley value as the mean
/// marginal gain over every permutation of the training points, on small sets with distance
/// ties; efficiency (a test point's values sum to U(D)); the mean over test points.
@Suite struct KNNShapleyTests {
    /// The Shapley values by brute force: each point's mean marginal utility over all orders.
    static func bruteForce(_ distances: [Double], k: Int, matches: [Bool]) -> [Double] {
        let n = distances.count
        var total = [Double](repeating: 0, count: n)
        var order = Array(0..<n), count = 0
        func utility(_ set: [Int]) -> Double {
            let ranked = set.sorted { distances[$0] != distances[$1] ? distances[$0] < distances[$1] : $0 < $1 }
            return KNNShapley.utility(ranked: ranked, k: k) { matches[$0] }
        }
        func visit(_ m: Int) {
            if m == n {
                count += 1
                var before = [Int]()
                var u = utility(before)
                for i in order {
                    before.append(i)
                    let next = utility(before)
                    total[i] += next - u
                    u = next
                }
                return
            }
            for j in m..<n {
                order.swapAt(m, j)
                visit(m + 1)
                order.swapAt(m, j)
            }
        }
        visit(0)
        return total.map { $0 / Double(count) }
    }

    @Test func theRecursionEqualsShapleyByPermutationsWithTies() {
        var rng = SplitMix64(seed: 0x5a91)
        for trial in 0..<60 {
            let n = 1 + rng.below(8)
            // Few distinct distances, so ties are common; 2 or 3 labels.
            let distances = (0..<n).map { _ in Double(rng.below(4)) }
            let matches = (0..<n).map { _ in rng.below(trial % 2 == 0 ? 2 : 3) == 0 }
            let k = 1 + rng.below(4)
            let fast = KNNShapley.values(order: KNNShapley.ranking(distances), k: k) { matches[$0] }
            let slow = Self.bruteForce(distances, k: k, matches: matches)
            for i in 0..<n { #expect(abs(fast[i] - slow[i]) < 1e-12, "trial \(trial), n \(n), k \(k): \(fast) vs \(slow)") }
            // Efficiency: the values add up to the utility of the whole set.
            let whole = KNNShapley.utility(ranked: KNNShapley.ranking(distances), k: k) { matches[$0] }
            #expect(abs(fast.reduce(0, +) - whole) < 1e-12)
        }
    }

    /// The radix ranking is the comparison sort's order: by distance, ties by index, negative
    /// distances (a cosine rounding below 0) first, over random distances with many ties.
    @Test func theRankingIsByDistanceThenIndex() {
        var rng = SplitMix64(seed: 0x4a4b)
        for trial in 0..<200 {
            let n = rng.below(300)
            let d = (0..<n).map { _ -> Double in
                switch rng.below(5) {
                case 0: -Double(rng.below(3)) * 1e-17
                case 1: Double(rng.below(4))
                default: Double(rng.next() % 1000) / Double(1 + rng.below(7))
                }
            }
            let expected = d.indices.sorted { d[$0] != d[$1] ? d[$0] < d[$1] : $0 < $1 }
            #expect(KNNShapley.ranking(d) == expected, "trial \(trial)")
        }
    }

    @Test func aLoneMatchingPointTakesAllAndTheMeanIsOverTestPoints() throws {
        // One point, K = 3: it alone decides; U({x}) = 1/3 when it matches.
        #expect(KNNShapley.values(order: [0], k: 3) { _ in true } == [1.0 / 3])
        #expect(KNNShapley.values(order: [], k: 3) { _ in true } == [])
        // Two test points: the first matched by point 0 only, the second by point 1 only.
        let mean = try KNNShapley.meanValues(trainLabels: [0, 1], testLabels: [0, 1], k: 1, distances: { t in t == 0 ? [0, 1] : [1, 0] })
        #expect(mean == [0.5, 0.5])
        // The blocked, in-place sums equal the per-test values averaged, on random data.
        var rng = SplitMix64(seed: 0x77)
        let train = (0..<300).map { _ in Int32(rng.below(4)) }, test = (0..<150).map { _ in Int32(rng.below(4)) }
        let d = (0..<150).map { _ in (0..<300).map { _ in Double(rng.below(50)) } }
        let fast = try KNNShapley.meanValues(trainLabels: train, testLabels: test, k: 5, distances: { d[$0] })
        var slow = [Double](repeating: 0, count: 300)
        for t in 0..<150 {
            let v = KNNShapley.values(order: KNNShapley.ranking(d[t]), k: 5) { train[$0] == test[t] }
            for i in 0..<300 { slow[i] += v[i] }
        }
        for i in 0..<300 { #expect(abs(fast[i] - slow[i] / 150) < 1e-15) }
    }
}

/// Integer shares by largest remainder always sum to the whole.
@Suite struct WeightsTests {
    @Test func sharesSumToTheWholeOverRandomInputs() {
        var rng = SplitMix64(seed: 0x3e19)
        for _ in 0..<10_000 {
            let n = 1 + rng.below(40)
            let scores = (0..<n).map { _ in rng.below(5) == 0 ? 0 : Double(rng.next() % 1_000_000) / Double(1 + rng.below(1000)) }
            let shares = Weights.split(scores)
            if scores.reduce(0, +) > 0 { #expect(shares.reduce(0, +) == Weights.whole, "\(scores)") } else { #expect(shares.allSatisfy { $0 == 0 }) }
            let ints = (0..<n).map { _ in rng.below(3) == 0 ? UInt64(0) : rng.next() >> UInt64(rng.below(64)) }
            let exact = Weights.split(integers: ints)
            if ints.contains(where: { $0 > 0 }) { #expect(exact.reduce(0, +) == Weights.whole, "\(ints)") }
        }
    }

    @Test func remaindersGoToTheLargestThenTheEarliest() {
        #expect(Weights.split(integers: [1, 1, 1], whole: 10) == [4, 3, 3])
        #expect(Weights.split(integers: [1, 2], whole: 10) == [3, 7])
        #expect(Weights.split(integers: [0, 0], whole: 10) == [0, 0])
        #expect(Weights.split([1, 1, 1], whole: 10) == [4, 3, 3])
        #expect(Weights.split(integers: [.max, .max], whole: 10) == [5, 5], "totals past 2^64 still split")
    }
}
