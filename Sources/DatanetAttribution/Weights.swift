/// Integer shares of a whole, by largest remainder (schema/valuation.md "Weights"): what an
/// attribution or reward record stores, so the parts sum exactly to the whole.
public enum Weights {
    /// One part in this many: shares are stored in parts per 10^9.
    public static let whole: UInt64 = 1_000_000_000

    /// Splits `whole` in proportion to `scores` (non-negative, finite; in intake order): each
    /// share is ⌊whole·score/total⌋, and the parts left over go one each to the largest
    /// remainders, ties to the earlier entry. All zero (or no entries): all shares zero.
    public static func split(_ scores: [Double], whole: UInt64 = whole) -> [UInt64] {
        let total = scores.reduce(0) { $0 + max(0, $1) } // a negative score earns nothing
        guard total > 0, total.isFinite else { return scores.map { _ in 0 } }
        var shares = [UInt64](), remainders = [Double]()
        for s in scores {
            let exact = Double(whole) * (max(0, s) / total)
            let floor = min(Double(whole), exact.rounded(.down))
            shares.append(UInt64(floor))
            remainders.append(exact - floor)
        }
        var left = Int64(whole) - Int64(shares.reduce(0, +))
        let order = remainders.indices.sorted { remainders[$0] != remainders[$1] ? remainders[$0] > remainders[$1] : $0 < $1 }
        var i = 0
        while left > 0, !order.isEmpty {
            shares[order[i % order.count]] += 1
            left -= 1
            i += 1
        }
        // Rounding can overshoot by a part when scores are extreme: taken back from the smallest
        // remainders, latest first.
        var j = order.count - 1
        while left < 0 {
            if shares[order[j]] > 0 { shares[order[j]] -= 1; left += 1 }
            j = j == 0 ? order.count - 1 : j - 1
        }
        return shares
    }

    /// Integer shares of `whole` for integer scores, exactly: ⌊whole·score/total⌋ in 128-bit
    /// arithmetic, then the largest remainders (ties to the earlier entry).
    public static func split(integers scores: [UInt64], whole: UInt64 = whole) -> [UInt64] {
        var total: UInt64 = 0
        for s in scores {
            let (sum, overflow) = total.addingReportingOverflow(s)
            guard !overflow else { return split(scores.map { Double($0) }, whole: whole) } // past 2^64: shares by ratio
            total = sum
        }
        guard total > 0 else { return scores.map { _ in 0 } }
        var shares = [UInt64](), remainders = [UInt64]()
        for s in scores {
            let (high, low) = whole.multipliedFullWidth(by: s)
            let (q, r) = total.dividingFullWidth((high, low))
            shares.append(q)
            remainders.append(r)
        }
        var left = whole - shares.reduce(0, +)
        let order = remainders.indices.sorted { remainders[$0] != remainders[$1] ? remainders[$0] > remainders[$1] : $0 < $1 }
        var i = 0
        while left > 0 { shares[order[i]] += 1; left -= 1; i += 1 }
        return shares
    }
}
