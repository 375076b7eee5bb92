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
