@testable import DatanetAttribution
import DatanetCrypto
import DatanetRecords
import DatanetTestSupport
import Testing

/// ∞-gram generation (schema/spans.md "∞-gram model") against brute force: every step's
/// suffix is the longest suffix of the context with a next byte in some document, the byte
/// drawn is one of those next bytes with the right counts, the contributions listed are those
/// holding suffix + byte; the same seed gives the same bytes; the artifact round-trips.
@Suite struct InfiniGramTests {
    static func continuations(_ context: [UInt8], _ docs: [[UInt8]]) -> [UInt8: Int] {
        var out = [UInt8: Int]()
        for d in docs where d.count > context.count {
            for o in 0..<(d.count - context.count) where d[o..<o + context.count].elementsEqual(context) { out[d[o + context.count], default: 0] += 1 }
        }
        return out
    }

    @Test func stepsMatchBruteForce() throws {
        var rng = SplitMix64(seed: 0x1F9)
        let words = ["sea", "salt", "and", "stone", "wind", "over", "the", "gray"]
        for round in 0..<6 {
            let docs = (0..<12).map { _ in Array((0..<Int(4 + rng.next() % 10)).map { _ in words[Int(rng.next() % 8)] }.joined(separator: " ").utf8) }
            let contributions = docs.enumerated().map { (contribution: $0.offset, bytes: $0.element) }
            let index = SpanIndex(shards: [try SpanIndexTests.shard(Array(contributions.prefix(5)), 0..<5), try SpanIndexTests.shard(contributions, 5..<12)])
            let model = InfiniGram(index)
            let prompt = Array("the \(words[round])".utf8)
            let steps = model.generate(prompt: prompt, maxBytes: 60, seed: UInt64(round))
            #expect(steps.map(\.byte) == model.generate(prompt: prompt, maxBytes: 60, seed: UInt64(round)).map(\.byte))
            var context = prompt
            for s in steps {
                var longest = 0
                for l in 0...context.count where !Self.continuations(Array(context.suffix(l)), docs).isEmpty { longest = l }
                let next = Self.continuations(Array(context.suffix(longest)), docs)
                #expect(s.suffix == longest && s.candidates == next.values.reduce(0, +) && s.count == next[s.byte], "round \(round)")
                let holders = docs.indices.filter { k in Self.continuations(Array(context.suffix(longest)), [docs[k]])[s.byte] != nil }
                #expect(s.contributions.map { Int($0.intake) } == holders)
                context.append(s.byte)
            }
        }
    }

    @Test func theArtifactRoundTrips() throws {
        let docs = (0..<8).map { (contribution: $0, bytes: Array("document \($0) of the sea".utf8)) }
        let shards = [try SpanIndexTests.shard(docs, 0..<3), try SpanIndexTests.shard(docs, 3..<8)]
        var bytes = [UInt8]()
        try InfiniGramArtifact.write(datanet: DatanetID(SHA256.hash([7])), checkpointSize: 12, checkpointRoot: SHA256.hash([8]),
                                     excluded: [SpanIndexTests.id(4), SpanIndexTests.id(1)], shards: shards) { bytes += $0 }
        let a = try bytes.withUnsafeBytes { try InfiniGramArtifact(prefix: $0, length: UInt64(bytes.count)) }
        #expect(a.checkpointSize == 12 && a.excluded == [SpanIndexTests.id(4), SpanIndexTests.id(1)].sorted() && a.shards.count == 2)
        for (s, placed) in zip(shards, a.shards) {
            #expect(Array(bytes[Int(placed.offset)..<Int(placed.offset + placed.length)]) == Array(s.bytes) && placed.from == s.binding.from)
        }
        // A damaged header or a shard past the end is refused.
        var cut = bytes
        cut[16] ^= 0xFF // the header array's initial byte
        #expect(throws: SpanError.self) { try cut.withUnsafeBytes { _ = try InfiniGramArtifact(prefix: $0, length: UInt64(cut.count)) } }
        #expect(throws: SpanError.self) { try bytes.withUnsafeBytes { _ = try InfiniGramArtifact(prefix: $0, length: UInt64(bytes.count - 8)) } }
        // Seeded mutations of the header and truncations: refused, or every shard inside the bytes.
        var rng = SplitMix64(seed: 0xA27)
        let headerEnd = 16 + Int(UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) }))
        var refused = 0
        for round in 0..<3_000 {
            var m = bytes
            if round % 10 == 0 { m = Array(m.prefix(Int(rng.next() % UInt64(headerEnd + 1)))) } else {
                for _ in 0..<Int(1 + rng.next() % 3) { m[Int(rng.next() % UInt64(headerEnd))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            guard let a = try? m.withUnsafeBytes({ try InfiniGramArtifact(prefix: $0, length: UInt64(m.count)) }) else { refused += 1; continue }
            for s in a.shards { #expect(s.offset <= UInt64(m.count) && s.length <= UInt64(m.count) - s.offset) }
        }
        #expect(refused > 1_000)
    }
}
