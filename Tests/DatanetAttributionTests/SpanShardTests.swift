@testable import DatanetAttribution
import DatanetCrypto
import DatanetRecords
import DatanetTestSupport
import Foundation
import Testing

/// The shard format (schema/spans.md "Shards"): what is written reads back field for field,
/// from memory and from a mapped file; a hostile or damaged shard is refused with a reason or,
/// when its tables still hold, answers without reading outside itself.
@Suite struct SpanShardTests {
    static func sample() throws -> (SpanShardBuilder, [UInt8]) {
        var b = SpanShardBuilder(.init(datanet: DatanetID(SHA256.hash([1])), checkpointRoot: SHA256.hash([2]), checkpointSize: 9, from: 3, to: 9))
        let a = b.add(.init(id: SpanIndexTests.id(1), intake: 3, state: .indexed))
        _ = b.add(.init(id: SpanIndexTests.id(2), intake: 5, state: .notHeld))
        let c = b.add(.init(id: SpanIndexTests.id(3), intake: 8, state: .indexed))
        try b.append(Array("the quiet river".utf8), contribution: a, path: "data/0003-notes/a.txt", line: 0)
        try b.append(Array("a quiet field".utf8), contribution: a, path: "data/0003-notes/b.jsonl", line: 4)
        try b.append(Array("".utf8), contribution: c, path: "data/0008-empty.txt", line: 0)
        try b.append(Array("the river of light ✓".utf8), contribution: c, path: "data/0008-x.md", line: 0)
        return (b, try b.encoded())
    }

    @Test func aShardReadsBackWhatWasWritten() throws {
        let (b, bytes) = try Self.sample()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("shard-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
        for s in [try SpanShard(bytes: bytes), try SpanShard(mapping: file)] {
            #expect(s.binding == b.binding && s.contributions == b.contributions && s.documentCount == 4 && s.width == 1)
            #expect((0..<4).map(s.path) == ["data/0003-notes/a.txt", "data/0003-notes/b.jsonl", "data/0008-empty.txt", "data/0008-x.md"])
            #expect((0..<4).map(s.line) == [0, 4, 0, 0] && (0..<4).map { s.contribution(ofDocument: $0) } == [0, 0, 2, 2])
            try s.checkEntries()
            let index = SpanIndex(shards: [s])
            #expect(index.count(Array("quiet".utf8)) == 2 && index.count(Array("river".utf8)) == 2 && index.count(Array("✓".utf8)) == 1)
            #expect(index.occurrences(Array("river".utf8)) == [.init(shard: 0, document: 0, offset: 10), .init(shard: 0, document: 3, offset: 4)])
        }
        // Deterministic: the same input gives the same bytes (the shard is content-addressed).
        #expect(try Self.sample().1 == bytes)
    }

    @Test func aDocumentHoldingTheSeparatorIsRefused() throws {
        var b = SpanShardBuilder(.init(datanet: DatanetID(Digest.zero), checkpointRoot: .zero, checkpointSize: 1, from: 0, to: 1))
        let c = b.add(.init(id: SpanIndexTests.id(0), intake: 0, state: .indexed))
        #expect(throws: SpanError.self) { try b.append([0x61, 0xFF], contribution: c, path: "x.txt", line: 0) }
    }

    /// Seeded mutations of every header field and table, truncation and extension: each is
    /// refused, or reads back and answers queries (bounds hold) without a crash.
    @Test func mutatedShardsAreRefusedOrStayInBounds() throws {
        let (_, bytes) = try Self.sample()
        var rng = SplitMix64(seed: 0x5A5A)
        var refused = 0, read = 0
        func attempt(_ m: [UInt8]) {
            guard let s = try? SpanShard(bytes: m) else { refused += 1; return }
            read += 1
            _ = try? s.checkEntries()
            let index = SpanIndex(shards: [s])
            for q in ["quiet", "the river", "light ✓", "zz"] { _ = index.count(Array(q.utf8)); _ = index.occurrences(Array(q.utf8)) }
            _ = SpanAttribution(index, text: Array("the quiet river of light".utf8), minimum: 3)
            for k in 0..<s.documentCount { _ = s.path(k) }
        }
        // Every 8-byte header word set to extremes, and every byte flipped.
        for word in stride(from: 8, to: SpanShard.headerSize, by: 8) {
            for v: UInt64 in [0, 1, 2, 0xFF, UInt64(bytes.count), 1 << 31, 1 << 40, .max, .max - 7] {
                var m = bytes
                withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { m[word + i] = $0[i] } }
                attempt(m)
            }
        }
        for i in bytes.indices { var m = bytes; m[i] ^= UInt8(truncatingIfNeeded: 1 + rng.next() % 255); attempt(m) }
        for n in [0, 7, 8, 100, SpanShard.headerSize, bytes.count - 1] { attempt(Array(bytes.prefix(n))) }
        attempt(bytes + [0])
        #expect(refused > 100 && read > 0)
    }
}
