@testable import DatanetAttribution
import DatanetCrypto
import DatanetRecords
import DatanetTestSupport
import Testing

/// The span index against brute force: counts, occurrences per document, the longest match at
/// every position of a query, and the maximal spans (each occurs, is maximal, none is missing);
/// sharded and unsharded indexes answer alike; an excluded contribution disappears.
@Suite struct SpanIndexTests {
    static func id(_ c: Int) -> RecordID { RecordID(SHA256.hash([UInt8(c & 255), UInt8(c >> 8), 0x5A])) }

    /// A shard of the documents whose contributions (intakes) fall in `range`.
    static func shard(_ docs: [(contribution: Int, bytes: [UInt8])], _ range: Range<Int>) throws -> SpanShard {
        var b = SpanShardBuilder(.init(datanet: DatanetID(Digest.zero), checkpointRoot: .zero, checkpointSize: UInt64(range.upperBound),
                                       from: UInt64(range.lowerBound), to: UInt64(range.upperBound)))
        var index = [Int: Int]()
        for c in range { index[c] = b.add(.init(id: id(c), intake: UInt64(c), state: .indexed)) }
        for (k, d) in docs.enumerated() where range.contains(d.contribution) {
            try b.append(d.bytes, contribution: index[d.contribution]!, path: "doc\(k)", line: k % 3)
        }
        return try SpanShard(bytes: b.encoded())
    }

    static func occurs(_ p: ArraySlice<UInt8>, in docs: [[UInt8]]) -> Bool {
        docs.contains { d in d.count >= p.count && (0...(d.count - p.count)).contains { d[$0..<$0 + p.count].elementsEqual(p) } }
    }

    static func randomQuery(_ docs: [[UInt8]], _ alphabet: Int, _ rng: inout SplitMix64) -> [UInt8] {
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
        return query
    }

    @Test func everythingEqualsBruteForce() throws {
        var rng = SplitMix64(seed: 0x59A7)
        for round in 0..<30 {
            let alphabet = [2, 4, 26][round % 3]
            let docs = (0..<Int(1 + rng.next() % 8)).map { _ in (0..<Int(rng.next() % 60)).map { _ in UInt8(97 + rng.next() % UInt64(alphabet)) } }
            let index = SpanIndex(shards: [try Self.shard(docs.enumerated().map { ($0.offset, $0.element) }, 0..<docs.count)])
            let query = Self.randomQuery(docs, alphabet, &rng)
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
            #expect(index.maximalSpans(query, minimum: 3) == expected.filter { $0.count >= 3 })
            for s in spans {
                #expect(Self.occurs(query[s], in: docs), "a span occurs")
                if s.upperBound < query.count { #expect(!Self.occurs(query[s.lowerBound...s.upperBound], in: docs), "a span cannot grow right") }
            }
            // Occurrences and counts of every span and of random patterns, against a naive scan.
            for p in spans.map({ Array(query[$0]) }) + [[97], [97, 98], [98, 97, 98]] {
                var naive = [SpanIndex.Location]()
                for (k, d) in docs.enumerated() where d.count >= p.count {
                    for o in 0...(d.count - p.count) where d[o..<o + p.count].elementsEqual(p) { naive.append(.init(shard: 0, document: k, offset: o)) }
                }
                #expect(index.occurrences(p) == naive)
                #expect(index.count(p) == naive.count)
            }
            #expect(index.occurrences([0xFF]).isEmpty && index.occurrences([]).isEmpty && index.count([0x61, 0xFF]) == 0)
        }
    }

    /// Random documents of 12 contributions (a few each), some repeated across contributions.
    static func corpus(_ rng: inout SplitMix64, words: [String]) -> [(contribution: Int, bytes: [UInt8])] {
        var docs = [(contribution: Int, bytes: [UInt8])]()
        for c in 0..<12 {
            for _ in 0..<Int(1 + rng.next() % 3) {
                if c > 0, rng.next() % 4 == 0 { docs.append((c, docs[Int(rng.next() % UInt64(docs.count))].bytes)); continue }
                docs.append((c, Array((0..<Int(3 + rng.next() % 30)).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ").utf8)))
            }
        }
        return docs
    }

    static let words = ["river", "stone", "the", "of", "light", "morning", "a", "quiet", "field", "and", "north", "wind"]

    /// What an index answers for a query, named by contribution id, file and offset (not by
    /// shard), so indexes sharded differently compare.
    static func answers(_ index: SpanIndex, _ query: [UInt8]) -> [String] {
        var out = ["L \(index.longestMatches(query))", "spans \(index.maximalSpans(query, minimum: 4))", "D \(index.documentCount)"]
        for s in index.maximalSpans(query, minimum: 4) {
            let p = Array(query[s])
            out.append("count \(index.count(p)) " + index.occurrences(p).map { "\(index.contribution($0).id.hex.prefix(8))/\(index.shards[$0.shard].path($0.document)):\($0.offset)" }.joined(separator: ","))
        }
        let a = SpanAttribution(index, text: query, minimum: 4)
        out += a.spans.map { "\($0.start)-\($0.end) n\($0.count) d\($0.documents) \($0.credited?.intake ?? 99) \($0.score) \($0.reason?.rawValue ?? "")" }
        out += a.weights.map { "w \($0.contribution.intake) \($0.score) \($0.weight)" }
        return out
    }

    @Test func shardedAndUnshardedGiveTheSameAnswers() throws {
        var rng = SplitMix64(seed: 0x5A4D)
        for _ in 0..<10 {
            let docs = Self.corpus(&rng, words: Self.words)
            let one = SpanIndex(shards: [try Self.shard(docs, 0..<12)])
            let three = SpanIndex(shards: [try Self.shard(docs, 0..<3), try Self.shard(docs, 3..<10), try Self.shard(docs, 10..<12)])
            for _ in 0..<5 {
                let query = Array((0..<20).map { _ in Self.words[Int(rng.next() % UInt64(Self.words.count))] }.joined(separator: " ").utf8)
                #expect(Self.answers(one, query) == Self.answers(three, query))
            }
        }
    }

    @Test func anExcludedContributionDisappearsFromEveryAnswer() throws {
        var rng = SplitMix64(seed: 0xE7C1)
        for _ in 0..<10 {
            let docs = Self.corpus(&rng, words: Self.words)
            let gone = Int(rng.next() % 12)
            let filtered = SpanIndex(shards: [try Self.shard(docs, 0..<5), try Self.shard(docs, 5..<12)], excluding: [Self.id(gone)])
            let without = SpanIndex(shards: [try Self.shard(docs.filter { $0.contribution != gone }, 0..<12)])
            for _ in 0..<5 {
                let query = Array((0..<20).map { _ in Self.words[Int(rng.next() % UInt64(Self.words.count))] }.joined(separator: " ").utf8)
                // The index without the contribution still lists it (with no documents): names only differ in paths.
                let a = Self.answers(filtered, query).map { $0.replacingOccurrences(of: "/doc[0-9]+", with: "", options: .regularExpression) }
                let b = Self.answers(without, query).map { $0.replacingOccurrences(of: "/doc[0-9]+", with: "", options: .regularExpression) }
                #expect(a == b)
                #expect(!Self.answers(filtered, query).joined().contains(Self.id(gone).hex.prefix(8)))
            }
        }
    }

    @Test func creditGoesToTheEarliestContribution() throws {
        let original = Array("the lighthouse keeper counted ninety seven gulls at dawn".utf8)
        let filler = (0..<200).map { (contribution: 2 + $0, bytes: Array("unrelated note number \($0) about tides".utf8)) }
        // Contribution 0 wrote it, 1 copied it later; contribution 2+ are unrelated.
        let docs = [(contribution: 0, bytes: original), (contribution: 1, bytes: original)] + filler
        let index = SpanIndex(shards: [try Self.shard(docs, 0..<202)])
        let text = Array("I read that the lighthouse keeper counted ninety seven gulls, then left.".utf8)
        let a = SpanAttribution(index, text: text, minimum: 20)
        let span = try #require(a.spans.first { $0.credited != nil })
        #expect(span.contributions.map(\.intake) == [0, 1] && span.credited?.intake == 0 && span.documents == 2)
        #expect(String(decoding: text[span.start..<span.end], as: UTF8.self) == "the lighthouse keeper counted ninety seven gulls")
        #expect(span.score == UInt64(span.end - span.start) * UInt64(202 / 2))
        #expect(a.weights.map(\.contribution.intake) == [0] && a.weights[0].weight == 1_000_000_000)
    }

    @Test func stopWordsAndCommonSpansEarnNothing() throws {
        let docs = (0..<150).map { (contribution: $0, bytes: Array("and then there were \($0 % 3 == 0 ? "none" : "some") of them in the dark".utf8)) }
        let index = SpanIndex(shards: [try Self.shard(docs, 0..<150)])
        let a = SpanAttribution(index, text: Array("x and then there were y".utf8), minimum: 5)
        #expect(a.spans.count == 1 && a.spans[0].reason == .stopWords && a.weights.isEmpty)
        let b = SpanAttribution(index, text: Array("of them in the dark!".utf8), minimum: 5)
        #expect(b.spans.count == 1 && b.spans[0].reason == .common && b.spans[0].documents == 150)
        let c = SpanAttribution(index, text: Array("zz were none of them zz".utf8), minimum: 5)
        #expect(c.spans.count == 1 && c.spans[0].reason == .common && c.spans[0].documents == 50)
        #expect(SpanAttribution.onlyStopWords(ArraySlice(" The\tOF\n".utf8)) && !SpanAttribution.onlyStopWords(ArraySlice("the dark".utf8)))
    }

    @Test func entryWidthsAreTheFewestBytesThatHoldAPosition() {
        #expect([0, 1, 2, 256, 257, 65_536, 65_537, 1 << 24, (1 << 24) + 1].map(SpanShard.width) == [1, 1, 1, 1, 2, 2, 3, 3, 4])
    }
}
