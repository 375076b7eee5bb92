import DatanetCrypto
@testable import DatanetLedger
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

@Suite struct MinHashTests {
    static func text(_ seed: UInt64, words n: Int) -> [String] {
        var rng = SplitMix64(seed: seed)
        let vocab = (0..<500).map { "w\($0)x\($0 * 7 % 13)" }
        return (0..<n).map { _ in vocab[Int(rng.next() % 500)] }
    }

    @Test func tokenizerFoldsCaseAndSplitsOnNonAlphanumerics() {
        #expect(MinHash.words("Hello, WORLD! Ünïcode—Straße 42") == ["hello", "world", "ünïcode", "straße", "42"])
        #expect(MinHash.signature("  ,;  ") == nil)
        #expect(MinHash.signature("The cat") == MinHash.signature("the CAT!"))
    }

    @Test func nearCopiesMatchAndDifferentTextsDoNot() throws {
        let base = Self.text(1, words: 2000)
        var edited = base
        edited[1000] = "changed" // one word: 5 of ~2000 shingles differ
        let a = try #require(MinHash.signature(base.joined(separator: " ")))
        let b = try #require(MinHash.signature(edited.joined(separator: "  ").uppercased()))
        let c = try #require(MinHash.signature(Self.text(2, words: 2000).joined(separator: " ")))
        #expect(MinHash.matches(a, b) >= MinHash.threshold)
        #expect(MinHash.matches(a, c) < 10)
        #expect(MinHash.threshold == Int((0.9 * Double(MinHash.k)).rounded(.up)))
        #expect(MinHash.isText("text/plain; charset=utf-8") && MinHash.isText("application/json") && !MinHash.isText("audio/flac"))
    }

    /// A contribution whose text nearly repeats an earlier one is flagged with that one's id.
    @Test func ledgerFlagsNearDuplicates() throws {
        let dir = NSTemporaryDirectory() + "datanet-minhash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
        let owner = try SigningKey()
        var g = Envelope(kind: .genesis, body: Genesis(policy: PolicyState(name: "t", owner: owner.publicKey, sequencer: owner.publicKey,
            curators: [owner.publicKey], quorum: 1, contributors: nil, readers: nil), createdAt: 0, nonce: [UInt8](repeating: 0, count: 16)).body)
        try g.sign(with: owner)
        let d = try ledger.create(genesis: g, sequencerKey: owner)
        var ids = [Digest]()
        let base = Self.text(3, words: 1500)
        var near = base
        near[700] = "different"
        for (i, words) in [base, near, Self.text(4, words: 1500)].enumerated() {
            let path = dir + "/t\(i).txt"
            FileManager.default.createFile(atPath: path, contents: Data(words.joined(separator: " ").utf8))
            let blob = try Ingest(store: ledger.store).add(paths: [path])[0]
            var e = Envelope(kind: .contribution, body: Contribution(datanet: d, author: owner.publicKey, content: blob.id, contentKind: .blob,
                size: blob.size, mediaType: "text/plain", license: "CC0-1.0", sidecar: .zero, createdAt: 0).body)
            try e.sign(with: owner)
            ids.append(try ledger.propose(e))
        }
        #expect(try ledger.nearDuplicate(of: ids[0]) == nil)
        #expect(try ledger.nearDuplicate(of: ids[1]) == ids[0])
        #expect(try ledger.nearDuplicate(of: ids[2]) == nil)
    }
}
