/// The suffix array of a byte string, built by SA-IS (Nong, Zhang and Chan, "Two Efficient
/// Algorithms for Linear Time Suffix Array Construction", 2011) in linear time, and exact
/// counting of a byte pattern over it (schema/spans.md, to come with the text attribution
/// issue). Suffixes order lexicographically by unsigned byte, a proper prefix first.
public struct SuffixArray: Sendable {
    public let text: [UInt8]
    /// The start of every suffix of `text`, in lexicographic order.
    public let positions: [Int]

    public init(_ text: [UInt8]) {
        self.text = text
        guard !text.isEmpty else { positions = []; return }
        // Bytes shifted up by one so a sentinel 0 (smaller than every byte, unique) ends the
        // string; its suffix sorts first and is dropped.
        var s = [Int](repeating: 0, count: text.count + 1)
        for (i, b) in text.enumerated() { s[i] = Int(b) + 1 }
        positions = Array(Self.sais(s, alphabet: 257).dropFirst())
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

    /// SA-IS over `s`, whose last value is a unique 0 and every value is below `alphabet`.
    static func sais(_ s: [Int], alphabet k: Int) -> [Int] {
        let n = s.count
        if n == 1 { return [0] }
        // S-type: smaller than the suffix after it; L-type otherwise. The sentinel is S.
        var isS = [Bool](repeating: false, count: n)
        isS[n - 1] = true
        for i in stride(from: n - 2, through: 0, by: -1) { isS[i] = s[i] < s[i + 1] || (s[i] == s[i + 1] && isS[i + 1]) }
        func isLMS(_ i: Int) -> Bool { i > 0 && isS[i] && !isS[i - 1] }
        var sizes = [Int](repeating: 0, count: k)
        for c in s { sizes[c] += 1 }
        var starts = [Int](repeating: 0, count: k)
        var sum = 0
        for c in 0..<k { starts[c] = sum; sum += sizes[c] }
        // Places the LMS suffixes `lms` (in the order given) at their buckets' ends, then
        // induces the L-type suffixes left to right and the S-type right to left.
        func induce(_ lms: [Int]) -> [Int] {
            var sa = [Int](repeating: -1, count: n)
            var tails = starts.indices.map { starts[$0] + sizes[$0] }
            for p in lms.reversed() { tails[s[p]] -= 1; sa[tails[s[p]]] = p }
            var heads = starts
            for i in 0..<n where sa[i] > 0 {
                let j = sa[i] - 1
                if !isS[j] { sa[heads[s[j]]] = j; heads[s[j]] += 1 }
            }
            tails = starts.indices.map { starts[$0] + sizes[$0] }
            for i in stride(from: n - 1, through: 0, by: -1) where sa[i] > 0 {
                let j = sa[i] - 1
                if isS[j] { tails[s[j]] -= 1; sa[tails[s[j]]] = j }
            }
            return sa
        }
        let lms = (1..<n).filter(isLMS)
        let first = induce(lms)
        // Name the LMS substrings in sorted order; equal substrings share a name.
        func sameSubstring(_ a: Int, _ b: Int) -> Bool {
            var i = 0
            while true {
                if s[a + i] != s[b + i] || isS[a + i] != isS[b + i] { return false }
                if i > 0 && (isLMS(a + i) || isLMS(b + i)) { return isLMS(a + i) && isLMS(b + i) }
                i += 1
            }
        }
        var names = [Int](repeating: -1, count: n)
        var name = -1, previous = -1
        for p in first where isLMS(p) {
            if previous < 0 || !sameSubstring(previous, p) { name += 1 }
            names[p] = name
            previous = p
        }
        let reduced = lms.map { names[$0] }
        let order: [Int]
        if name + 1 < lms.count {
            order = sais(reduced, alphabet: name + 1)
        } else {
            var o = [Int](repeating: 0, count: lms.count)
            for (i, r) in reduced.enumerated() { o[r] = i }
            order = o
        }
        return induce(order.map { lms[$0] })
    }
}
