@testable import DatanetAttribution
import DatanetTestSupport
import Testing

/// SA-IS against a naive sort of every suffix, and counting against naive counting, on random
/// texts of 0 to 2,000 bytes over alphabets of 1, 2, 4 and 256 symbols and on repeated
/// documents separated by 0xFF (the byte UTF-8 never holds).
@Suite struct SuffixArrayTests {
    static func naive(_ t: [UInt8]) -> [Int] {
        t.indices.sorted { t[$0...].lexicographicallyPrecedes(t[$1...]) }
    }

    static func naiveCount(_ t: [UInt8], _ p: [UInt8]) -> Int {
        guard !p.isEmpty else { return t.count }
        guard p.count <= t.count else { return 0 }
        return (0...(t.count - p.count)).filter { t[$0..<$0 + p.count].elementsEqual(p) }.count
    }

    static func texts() -> [[UInt8]] {
        var rng = SplitMix64(seed: 0x5A15)
        var out = [[UInt8]]()
        for alphabet in [1, 2, 4, 256] {
            for size in [0, 1, 2, 3, 7, 16, 100, 513, 2_000] {
                out.append((0..<size).map { _ in UInt8(rng.next() % UInt64(alphabet)) })
            }
        }
        // Documents, some repeated, separated by 0xFF.
        for _ in 0..<6 {
            let docs = (0..<5).map { _ in (0..<Int(rng.next() % 40)).map { _ in UInt8(97 + rng.next() % 3) } }
            var t = [UInt8]()
            for _ in 0..<12 { t += docs[Int(rng.next() % 5)] + [0xFF] }
            out.append(t)
        }
        return out
    }

    @Test func saisEqualsANaiveSort() {
        for t in Self.texts() {
            #expect(SuffixArray(t).positions == Self.naive(t), "text of \(t.count) bytes")
        }
    }

    @Test func countEqualsNaiveCounting() {
        var rng = SplitMix64(seed: 0xC0)
        for t in Self.texts() where !t.isEmpty {
            let sa = SuffixArray(t)
            for _ in 0..<40 {
                // Patterns that occur (cut from the text) and that may not.
                let start = Int(rng.next() % UInt64(t.count)), length = Int(rng.next() % 6)
                let cut = Array(t[start..<min(t.count, start + length)])
                let random = (0..<Int(1 + rng.next() % 3)).map { _ in UInt8(rng.next() % 4) }
                for p in [cut, random] { #expect(sa.count(p) == Self.naiveCount(t, p), "\(p) in \(t.count) bytes") }
            }
        }
        #expect(SuffixArray([]).count([1]) == 0 && SuffixArray([]).count([]) == 0)
    }
}

/// SA-IS on texts too large for a naive sort: the result is a permutation and every adjacent
/// pair of suffixes is in order (repetitive text drives the recursion several levels deep).
@Suite struct SuffixSorterTests {
    @Test func largeTextsComeOutSorted() {
        var rng = SplitMix64(seed: 0x5011)
        let words = ["alpha ", "beta ", "gamma ", "delta\n", "a", "ab"]
        var texts: [[UInt8]] = [Array(repeating: 7, count: 1_500), (0..<1_500).map { UInt8($0 % 3) }]
        texts.append(Array((0..<8_000).map { _ in words[Int(rng.next() % 6)] }.joined().utf8))
        var repeated = [UInt8]()
        let doc = (0..<300).map { _ in UInt8(97 + rng.next() % 4) }
        for _ in 0..<20 { repeated += doc + [0xFF] }
        texts.append(repeated)
        texts.append((0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        for t in texts {
            let p = SuffixArray(t).positions
            #expect(Set(p).count == t.count && p.allSatisfy { $0 >= 0 && $0 < t.count })
            let ordered = zip(p, p.dropFirst()).allSatisfy { a, b in t[a...].lexicographicallyPrecedes(t[b...]) }
            #expect(ordered, "text of \(t.count) bytes")
        }
    }

    /// Texts past the size at which the induction gathers a block on both cores (64 Ki
    /// entries) and the types, the LMS placing and the compactions split (128 Ki), one of them
    /// (the repeated documents, about 204 K LMS substrings) past the one at which the naming and
    /// mapping split (128 Ki), so the parallel passes and block edges are exercised on a machine
    /// of two or more cores; each checked exactly. Two are runs of one byte across a part's
    /// edge, ending in the text's end (L-type) and in a larger byte (S-type), the second
    /// followed by an LMS suffix.
    @Test func textsPastTheParallelThresholdsComeOutSorted() {
        var rng = SplitMix64(seed: 0xB10C)
        let words = ["alpha ", "beta ", "gamma ", "delta\n", "a", "ab", "ba", "abc "]
        var texts: [[UInt8]] = [Array(repeating: 7, count: 200_000), Array(repeating: 5, count: 180_000) + [9, 1, 5, 9, 1],
                                (0..<300_000).map { UInt8($0 % 3) }]
        texts.append(Array((0..<120_000).map { _ in words[Int(rng.next() % 8)] }.joined().utf8))
        let docs = (0..<40).map { _ in (0..<Int(500 + rng.next() % 3_000)).map { _ in UInt8(97 + rng.next() % 4) } }
        var repeated = [UInt8]()
        while repeated.count < 700_000 { repeated += docs[Int(rng.next() % 40)] + [0xFF] }
        texts.append(repeated)
        texts.append((0..<300_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        for t in texts {
            let sorted = SuffixSorter.isSuffixArray(SuffixArray(t).positions, of: t) // a Bool, so a failure prints no array
            #expect(sorted, "text of \(t.count) bytes")
        }
        // The check itself rejects a wrong order.
        let t = Array("banana".utf8)
        #expect(SuffixSorter.isSuffixArray([5, 3, 1, 0, 4, 2], of: t) && !SuffixSorter.isSuffixArray([5, 1, 3, 0, 4, 2], of: t))
    }
}
