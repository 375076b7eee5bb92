@testable import DatanetAttribution
import DatanetTestSupport
import Testing

/// The span index against brute force: occurrences per document, the longest match at every
/// position of a query, and the maximal spans (each occurs, is maximal, none is missing).
@Suite struct SpanIndexTests {
    static func occurs(_ p: ArraySlice<UInt8>, in docs: [[UInt8]]) -> Bool {
        docs.contains { d in d.count >= p.count && (0...(d.count - p.count)).contains { d[$0..<$0 + p.count].elementsEqual(p) } }
    }

    @Test func everythingEqualsBruteForce() {
        var rng = SplitMix64(seed: 0x59A7)
        for round in 0..<30 {
            let alphabet = [2, 4, 26][round % 3]
            let docs = (0..<Int(1 + rng.next() % 8)).map { _ in (0..<Int(rng.next() % 60)).map { _ in UInt8(97 + rng.next() % UInt64(alphabet)) } }
            let index = SpanIndex(docs.enumerated().map { (contribution: $0.offset, bytes: $0.element) })
            // A query of pieces of documents, random letters and the odd 0xFF.
            var query = [UInt8]()
            for _ in 0..<6 {
                switch rng.next() % 3 {
                case 0 where !docs.isEmpty:
                    let d = docs[Int(rng.next() % UInt64(docs.count))]
                    if !d.isEmpty { let s = Int(rng.next() % UInt64(d.count)); query += d[s..<min(d.count, s + Int(rng.next() % 12))] }
                case 1: query.append(0xFF)
                default: query += (0..<Int(rng.next() % 5)).map { _ in UInt8(97 + rng.next() % UInt64(alphabet)) }
                }
            }
            // Longest matches.
            var brute = [Int]()
            for i in query.indices {
                var l = 0
                while i + l < query.count, Self.occurs(query[i...(i + l)], in: docs) { l += 1 }
                brute.append(l)
            }
            #expect(index.longestMatches(query) == brute, "round \(round)")
            let spans = index.maximalSpans(query)
            let expected = brute.indices.filter { brute[$0] > 0 && ($0 == 0 || $0 + brute[$0] > $0 - 1 + brute[$0 - 1]) }.map { $0..<($0 + brute[$0]) }
            #expect(spans == expected)
            for s in spans {
                #expect(Self.occurs(query[s], in: docs), "a span occurs")
                if s.upperBound < query.count { #expect(!Self.occurs(query[s.lowerBound...s.upperBound], in: docs), "a span cannot grow right") }
            }
            // Occurrences of every span, per document and offset, against a naive scan.
            for s in spans {
                let p = Array(query[s])
                var naive = [SpanIndex.Location]()
                for (k, d) in docs.enumerated() where d.count >= p.count {
                    for o in 0...(d.count - p.count) where d[o..<o + p.count].elementsEqual(p) { naive.append(.init(document: k, offset: o)) }
                }
                #expect(index.occurrences(p).sorted() == naive)
            }
            #expect(index.occurrences([0xFF]).isEmpty && index.occurrences([]).isEmpty)
        }
    }
}
