/// The suffix array of a byte string in memory (SuffixSorter's SA-IS), and exact counting of a
/// byte pattern over it (schema/spans.md). Suffixes order lexicographically by unsigned byte,
/// a proper prefix first.
public struct SuffixArray: Sendable {
    public let text: [UInt8]
    /// The start of every suffix of `text`, in lexicographic order.
    public let positions: [Int]

    public init(_ text: [UInt8]) {
        self.text = text
        var sa = [Int32](repeating: 0, count: text.count)
        text.withUnsafeBufferPointer { t in sa.withUnsafeMutableBufferPointer { SuffixSorter.sort(t, into: $0) } }
        positions = sa.map(Int.init)
    }

    /// The range of `positions` whose suffixes start with `pattern` (empty when none do; every
    /// position for an empty pattern). Occurrences may overlap.
    public func range(of pattern: [UInt8]) -> Range<Int> {
        guard !pattern.isEmpty else { return 0..<positions.count }
        // Compares the suffix at `p` with the pattern over the pattern's length: -1, 0 or 1.
        func compare(_ p: Int) -> Int {
            var i = 0
            while i < pattern.count {
                guard p + i < text.count else { return -1 } // the suffix is a proper prefix: smaller
                let a = text[p + i], b = pattern[i]
                if a != b { return a < b ? -1 : 1 }
                i += 1
            }
            return 0
        }
        var (lo, hi) = (0, positions.count)
        while lo < hi { let mid = (lo + hi) / 2; if compare(positions[mid]) < 0 { lo = mid + 1 } else { hi = mid } }
        var end = lo
        var top = positions.count
        while end < top { let mid = (end + top) / 2; if compare(positions[mid]) <= 0 { end = mid + 1 } else { top = mid } }
        return lo..<end
    }

    /// How many times `pattern` occurs in the text (overlapping occurrences counted).
    public func count(_ pattern: [UInt8]) -> Int { range(of: pattern).count }
}
