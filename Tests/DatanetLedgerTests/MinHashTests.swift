import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
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

    /// Ingests `text` into the World's store and proposes it as a contribution of `mediaType`.
    @discardableResult
    static func propose(_ text: String, in w: LedgerTests.World, ledger: Ledger? = nil, mediaType: String = "text/plain",
                        createdAt: UInt64 = 0) throws -> RecordID {
        let ledger = ledger ?? w.ledger
        return try ledger.propose(contribution(text, in: w, ledger: ledger, mediaType: mediaType, createdAt: createdAt))
    }

    /// Ingests `text` into the World's store and signs a contribution naming it (not proposed).
    static func contribution(_ text: String, in w: LedgerTests.World, ledger: Ledger? = nil, mediaType: String = "text/plain",
                             createdAt: UInt64 = 0) throws -> Envelope {
        try w.stored(Array(text.utf8), ledger: ledger, mediaType: mediaType, createdAt: createdAt)
    }

    /// Signatures from an independent implementation of curation.md (tools/gen/minhash.py),
    /// slot by slot: fixes k, the shingle hash, the slot parameters aᵢ, bᵢ and the tokenizer.
    @Test func goldenSignatures() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("schema/vectors/minhash.json")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect(doc["k"] as? Int == MinHash.k && doc["threshold"] as? Int == MinHash.threshold)
        let params = try #require(doc["params"] as? [[String]])
        for (i, p) in params.enumerated() {
            #expect(p == [MinHash.params[i].0, MinHash.params[i].1].map { Hex.encode(BigEndian.bytes($0)) }, "params \(i)")
        }
        let cases = try #require(doc["cases"] as? [[String: Any]])
        #expect(cases.count == 6)
        var sigs = [[UInt64]?]()
        for c in cases {
            let text = try #require(c["text"] as? String)
            #expect(MinHash.words(text).count == c["words"] as? Int, "\(text.prefix(30))")
            let ours = MinHash.signature(text)
            sigs.append(ours)
            let theirs = c["signature"] as? [String]
            #expect(ours?.map { Hex.encode(BigEndian.bytes($0)) } == theirs, "\(text.prefix(30))")
        }
        #expect(MinHash.matches(sigs[4]!, sigs[5]!) == doc["matches_4_5"] as? Int)
    }

    /// The folded reduction equals the division it replaces, at the edges and at random.
    @Test func foldedReductionEqualsDivision() {
        let p = MinHash.prime
        var rng = SplitMix64(seed: 61)
        let edges: [UInt64] = [0, 1, 2, p - 2, p - 1]
        var cases = [(UInt64, UInt64, UInt64)]()
        for a in edges { for x in edges { for b in edges { cases.append((a, x, b)) } } }
        for _ in 0..<100_000 { cases.append((rng.next() % p, rng.next() % p, rng.next() % p)) }
        for (a, x, b) in cases {
            let (hi, lo) = a.multipliedFullWidth(by: x)
            #expect(MinHash.mulAddMod(a, x, b) == (p.dividingFullWidth((hi, lo)).remainder + b) % p, "\(a) \(x) \(b)")
        }
    }

    /// The ASCII byte loop gives what the Character rule gives, on every ASCII byte mix.
    @Test func asciiTokensMatchTheCharacterRule() {
        var rng = SplitMix64(seed: 128)
        for _ in 0..<3_000 {
            let text = String(decoding: (0..<Int(rng.next() % 64)).map { _ in UInt8(rng.next() % 128) }, as: UTF8.self)
            #expect(MinHash.tokens(text) == MinHash.tokensByCharacter(text), "\(Array(text.utf8))")
        }
        #expect(MinHash.tokens("A\r\nb-C9_d") == [[0x61], [0x62], [0x63, 0x39], [0x64]])
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
    }

    /// A contribution whose text nearly repeats an earlier one is flagged with that one's id.
    @Test func ledgerFlagsNearDuplicates() throws {
        let w = try LedgerTests.World(quorum: 1)
        let base = Self.text(3, words: 1500)
        var near = base
        near[700] = "different"
        let ids = try [base, near, Self.text(4, words: 1500)].map { try Self.propose($0.joined(separator: " "), in: w) }
        #expect(try w.ledger.reader.nearDuplicate(of: ids[0]) == nil)
        #expect(try w.ledger.reader.nearDuplicate(of: ids[1]) == ids[0])
        #expect(try w.ledger.reader.nearDuplicate(of: ids[2]) == nil)
    }

    /// A bundle's pending proposals are flagged against what the importing store holds, from
    /// sketches made as their chunks arrived: the near-copy of a contribution the peer holds is
    /// flagged with its id, and an unrelated text in the same bundle is not.
    @Test func pendingProposalsInABundleAreFlaggedOnImport() throws {
        let w = try LedgerTests.World(quorum: 1)
        let base = Self.text(6, words: 1200)
        var near = base
        near[600] = "elsewhere"
        let held = try Self.propose(base.joined(separator: " "), in: w)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        let size = try peer.ledger.reader.state(of: w.datanet).size
        let nearID = try Self.propose(near.joined(separator: " "), in: w, createdAt: 1)
        let other = try Self.propose(Self.text(7, words: 1200).joined(separator: " "), in: w, createdAt: 2)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: size))
        #expect(try peer.ledger.reader.nearDuplicate(of: nearID) == held)
        #expect(try peer.ledger.reader.nearDuplicate(of: other) == nil)
        #expect(try peer.ledger.reader.nearDuplicate(of: held) == nil)
    }

    /// The hardening issue's evasion: near-copies claimed as application/octet-stream (what
    /// `contribute` recorded for .txt files) went unflagged. Text is decided by its bytes now;
    /// an exact copy is called an exact duplicate; binary content is never MinHashed.
    @Test func nearDuplicatesAreFoundWhateverTypeIsClaimed() throws {
        let w = try LedgerTests.World(quorum: 1)
        let base = Self.text(5, words: 800)
        var near = base
        near[400] = "typo"
        let a = try Self.propose(base.joined(separator: " "), in: w, mediaType: "application/octet-stream")
        let b = try Self.propose(near.joined(separator: "\n"), in: w, mediaType: "application/octet-stream", createdAt: 1)
        let c = try Self.propose(base.joined(separator: " "), in: w, mediaType: "audio/flac", createdAt: 2)
        #expect(try w.ledger.reader.duplicateFlag(of: b).map { [$0.earlier == a, $0.exact] } == [true, false])
        #expect(try w.ledger.reader.duplicateFlag(of: c).map { [$0.earlier == a, $0.exact] } == [true, true])
        #expect(try w.ledger.reader.duplicateFlag(of: a) == nil)
        // Bytes that are not UTF-8 are not text, whatever the claim.
        var binary = Array(base.joined(separator: " ").utf8)
        binary[10] = 0xff
        let path = w.dir + "-bin"
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data(binary))
        let blob = try Ingest(store: w.ledger.store).add(paths: [path])[0]
        var e = Envelope(kind: .contribution, body: Contribution(datanet: w.datanet, author: w.author.publicKey, content: blob.id,
            contentKind: .blob, size: blob.size, mediaType: "text/plain", license: "CC0-1.0", sidecar: .zero, createdAt: 4).body)
        try e.sign(with: w.author)
        #expect(try w.ledger.reader.nearDuplicate(of: try w.ledger.propose(e)) == nil)
        // After intake, the exact copy is flagged through the contents index too.
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try w.ledger.reader.duplicateFlag(of: c).map { $0.exact } == true)
    }

    @Test func mediaTypesAreGuessedFromExtensionThenContent() {
        #expect(MediaType.guess(fileName: "GPL-3.txt", isFolder: false, sample: nil) == "text/plain")
        #expect(MediaType.guess(fileName: "notes.MD", isFolder: false, sample: nil) == "text/markdown")
        #expect(MediaType.guess(fileName: "data.jsonl", isFolder: false, sample: nil) == "application/x-ndjson")
        #expect(MediaType.guess(fileName: "LICENSE", isFolder: false, sample: Array("MIT License".utf8)) == "text/plain")
        #expect(MediaType.guess(fileName: "blob", isFolder: false, sample: [0xff, 0x00]) == "application/octet-stream")
        #expect(MediaType.guess(fileName: ".bashrc", isFolder: false, sample: nil) == "application/octet-stream")
        #expect(MediaType.guess(fileName: "songs", isFolder: true, sample: nil) == "inode/directory")
    }

    /// Two signatures agreeing in ≥ 116 slots share a band key, however the ≤ 12 differing
    /// slots fall; keys of one band are equal exactly when its 8 slots are.
    @Test func bandsCatchEveryPairAtTheThreshold() {
        var rng = SplitMix64(seed: 9)
        let d = DatanetID(SHA256.hash([4]))
        for trial in 0..<2_000 {
            let a = (0..<MinHash.k).map { _ in rng.next() }
            var b = a
            // Spread the 12 differences over 12 bands in the worst trials, at random otherwise.
            var slots = Set<Int>()
            if trial % 2 == 0 {
                for band in 0..<12 { slots.insert(band * Ledger.bandWidth + Int(rng.next() % UInt64(Ledger.bandWidth))) }
            } else {
                while slots.count < 12 { slots.insert(Int(rng.next() % UInt64(MinHash.k))) }
            }
            for i in slots { b[i] ^= 1 + rng.next() % 1000 }
            #expect(MinHash.matches(a, b) == MinHash.threshold)
            let shared = zip(Ledger.bandKeys(d, a), Ledger.bandKeys(d, b)).filter { $0 == $1 }.count
            #expect(shared >= Ledger.bands - 12, "trial \(trial)")
        }
    }

    /// The band index flags exactly what comparing with every earlier contribution flags.
    @Test func indexAgreesWithAFullComparison() throws {
        let w = try LedgerTests.World(quorum: 1)
        var rng = SplitMix64(seed: 77)
        var texts = [[String]]()
        for i in 0..<40 {
            if i > 0 && rng.next() % 2 == 0 {
                var t = texts[Int(rng.next() % UInt64(texts.count))]
                for _ in 0..<Int(rng.next() % 4) { t[Int(rng.next() % UInt64(t.count))] = "edit\(i)" }
                texts.append(t)
            } else {
                texts.append(Self.text(100 + UInt64(i), words: 300))
            }
        }
        var ids = [RecordID](), sigs = [[UInt64]]()
        for (i, words) in texts.enumerated() {
            ids.append(try Self.propose(words.joined(separator: " "), in: w, mediaType: "text/markdown", createdAt: UInt64(i)))
            sigs.append(try #require(MinHash.signature(words.joined(separator: " "))))
        }
        var flagged = 0
        for i in ids.indices {
            var best: RecordID?, most = 0
            for j in 0..<i where ids[j] != ids[i] {
                let m = MinHash.matches(sigs[i], sigs[j])
                if m >= MinHash.threshold && (m > most || (m == most && ids[j] < best!)) { (best, most) = (ids[j], m) }
            }
            #expect(try w.ledger.reader.nearDuplicate(of: ids[i]) == best, "contribution \(i)")
            if best != nil { flagged += 1 }
        }
        #expect(flagged >= 10)
        // A store made before the band index: its signatures are indexed when it is next opened.
        let bands = try #require(w.ledger.minhashBands)
        try w.ledger.store.env.write { txn in
            var keys = [[UInt8]]()
            try txn.scan(bands) { k, _ in keys.append(Array(k)); return true }
            for k in keys { _ = try txn.delete(bands, k) }
            _ = try txn.delete(w.ledger.meta, Array("minhash-bands-v1".utf8))
        }
        let reopened = try Ledger(store: w.ledger.store)
        let (signatures, bandEntries) = try reopened.store.env.read { txn in
            var counts = (0, 0)
            try txn.scan(reopened.minhashes) { _, _ in counts.0 += 1; return true }
            try txn.scan(bands) { _, _ in counts.1 += 1; return true }
            return counts
        }
        #expect(signatures == ids.count && bandEntries == Ledger.bands * ids.count)
        let late = try Self.propose(texts[0].joined(separator: " ") + " coda", in: w, ledger: reopened, createdAt: 999)
        #expect(try reopened.reader.nearDuplicate(of: late) != nil)
    }

    /// Batches (`propose(all:)`: sketched on worker threads, flagged a slice of 256 at a time,
    /// the band index read and written in key order) and bundle imports flag what the rule
    /// says, as proposing one at a time does: near and exact copies of records earlier in the
    /// same slice, in earlier slices and in earlier batches.
    @Test func batchesFlagWhatSingleProposalsFlag() throws {
        var rng = SplitMix64(seed: 4242)
        var texts = [String]()
        for i in 0..<700 {
            if i > 0 && rng.next() % 3 == 0 {
                // A copy of an earlier text, exact or with one word changed; mostly a near one.
                var t = texts[Int(rng.next() % UInt64(texts.count))].split(separator: " ").map(String.init)
                if rng.next() % 4 != 0 { t[Int(rng.next() % UInt64(t.count))] = "edit\(i)" }
                texts.append(t.joined(separator: " "))
            } else {
                texts.append(Self.text(9_000 + UInt64(i), words: 300).joined(separator: " "))
            }
        }
        // What flagging each in turn gives (curation.md): among earlier texts with ≥ 116 agreeing
        // slots, an exact copy first, then the most slots, then the smallest id.
        let w = try LedgerTests.World(quorum: 1, maxPending: 1_000) // every text is taken in
        let envelopes = try texts.enumerated().map { try Self.contribution($1, in: w, createdAt: UInt64($0)) }
        let ids = envelopes.map(\.id)
        let sigs = try texts.map { try #require(MinHash.signature($0)) }
        var expected = [RecordID?]()
        for i in texts.indices {
            var best: (rank: Int, id: RecordID)?
            for j in 0..<i {
                let m = MinHash.matches(sigs[i], sigs[j])
                guard m >= MinHash.threshold else { continue }
                let rank = texts[i] == texts[j] ? MinHash.k + 1 : m
                if best == nil || rank > best!.rank || (rank == best!.rank && ids[j] < best!.id) { best = (rank, ids[j]) }
            }
            expected.append(best?.id)
        }
        #expect(expected.compactMap { $0 }.count >= 150)
        try w.ledger.propose(all: Array(envelopes[..<600]))
        try w.ledger.propose(all: Array(envelopes[600...]))
        #expect(try ids.map { try w.ledger.reader.nearDuplicate(of: $0) } == expected)
        // A store importing the log flags the same (its intakes are sketched on every core
        // inside the import's transaction; "earlier" is then the lower intake index).
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try ids.map { try peer.ledger.reader.nearDuplicate(of: $0) } == expected)
    }

    /// A store importing a Datanet flags its near-duplicates too, for its curators.
    @Test func importedContributionsAreFlagged() throws {
        let w = try LedgerTests.World(quorum: 1)
        let base = Self.text(5, words: 400)
        var near = base
        near[200] = "changed"
        let ids = try [base, near].enumerated().map { try Self.propose($1.joined(separator: " "), in: w, createdAt: UInt64($0)) }
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try peer.ledger.reader.nearDuplicate(of: ids[1]) == ids[0])
        #expect(try peer.ledger.reader.nearDuplicate(of: ids[0]) == nil)
    }
}
