import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Seeded mutations of the provenance decoders' inputs (SQLite's habit): receipts and bundles
/// never crash the verifier or importer, and a mutated bundle never changes the store.
@Suite struct ProvenanceFuzzTests {
    /// The golden receipt (a policy chain, a last leaf and a decision) and a fresh one checked
    /// against the store that made it, and an export's manifest with and without the log:
    /// 2,000 mutations each here (debug build); `tools/test` runs 10^5 of each through the
    /// release-built `provenance-fuzz`, and `tools/fuzz/provenance` runs any number.
    @Test func mutatedReceiptsAndManifestsNeverCrashOrHoldChanged() throws {
        let golden = try Receipt(json: Data(contentsOf: ReceiptGoldenTests.dir.appendingPathComponent("good.json")))
        let fixture = try ProvenanceFixture()
        let receipts = [try ReceiptFuzzer(good: golden, anchor: try #require(DatanetID(hex: golden.datanet))),
                        try ReceiptFuzzer(good: fixture.receipt, anchor: fixture.datanet, held: fixture.held)]
        let manifests = [try ManifestFuzzer(dir: fixture.export, ledger: fixture.ledger), try ManifestFuzzer(dir: fixture.export, ledger: nil)]
        let r = try Parallel.map(Array(0..<2), grain: 1) { receipts[$0].run(seed: UInt64(100 + $0), count: 1_000) }.reduce(FuzzOutcome(), +)
        let m = try Parallel.map(Array(0..<2), grain: 1) { manifests[$0].run(seed: UInt64(200 + $0), count: 1_000) }.reduce(FuzzOutcome(), +)
        #expect(r.failures.isEmpty && m.failures.isEmpty, "\((r.failures + m.failures).prefix(3))")
        #expect(r.refused + r.held == 2_000 && m.refused + m.held == 2_000)
        // Most mutations must be refused, and some (layout only) must still hold: a fuzzer
        // that refused everything would test nothing.
        #expect(r.refused > 1_800 && r.held > 0 && m.refused > 1_500 && m.held > 0)
    }

    /// The crash the hardening issue reported: an intake or decision index edited to 0 made
    /// `citedPolicy` index past the chain (SIGILL). Every index value now gives a failing check.
    @Test func editedLeafIndexesFailWithoutTrapping() throws {
        let golden = try Receipt(json: Data(contentsOf: ReceiptGoldenTests.dir.appendingPathComponent("good.json")))
        let anchor = try #require(DatanetID(hex: golden.datanet))
        for value: UInt64 in [0, 1, 2, 5, 6, 7, .max] {
            var r = golden
            r.intake.index = value
            if value != golden.intake.index { #expect(!r.verify(anchor: anchor).holds, "intake index \(value)") }
            r = golden
            r.decision?.index = value
            if value != golden.decision?.index { #expect(!r.verify(anchor: anchor).holds, "decision index \(value)") }
            r = golden
            r.chain[r.chain.count - 1].index = value
            if value != golden.chain.last?.index { #expect(!r.verify(anchor: anchor).holds, "chain index \(value)") }
        }
    }

    /// Found by provenance-fuzz in CI: Foundation reads base64 with other padding or set
    /// trailing bits as the same bytes, so one receipt had many texts that verified. Leaf
    /// bytes, proof hashes and checkpoint signatures are read only in their canonical spelling.
    @Test func nonCanonicalBase64IsRefused() throws {
        let golden = try Receipt(json: Data(contentsOf: ReceiptGoldenTests.dir.appendingPathComponent("good.json")))
        let anchor = try #require(DatanetID(hex: golden.datanet))
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        // 32 bytes end in one padding '='; the character before it carries 2 unused bits.
        var hash = Array(golden.intake.proof[0])
        let i = try #require(alphabet.firstIndex(of: hash[42]))
        hash[42] = alphabet[i ^ 1]
        let spelled = String(hash)
        #expect(Data(base64Encoded: spelled) == Data(base64Encoded: golden.intake.proof[0])) // the same bytes to Foundation
        var r = golden
        r.intake.proof[0] = spelled
        #expect(!r.verify(anchor: anchor).holds)
        #expect(CanonicalBase64.decode(spelled) == nil && CanonicalBase64.decode(golden.intake.proof[0]) != nil)
        // Found the same way (seed 102): a checkpoint note with a newline more, or a signature
        // line with a space more, verified as a second text of the same note.
        for edit in [{ (n: String) in n + "\n" }, { $0.replacingOccurrences(of: "— ", with: "—  ") },
                     { $0.replacingOccurrences(of: "\n\n", with: "\n\n\n") }] {
            var c = golden
            c.checkpoint = edit(golden.checkpoint)
            #expect(c.checkpoint != golden.checkpoint)
            #expect(!c.verify(anchor: anchor).holds)
        }
    }

    /// A receipt naming contribution A with a second "contribution" key naming B: Foundation
    /// reads A, other readers B. Refused, as is any repeated key anywhere in the file.
    @Test func repeatedKeysAreRefused() throws {
        let golden = try Data(contentsOf: ReceiptGoldenTests.dir.appendingPathComponent("good.json"))
        var tree = try #require(JSONTree.parse(Array(golden)))
        #expect(try Receipt(json: Data(tree.serialized)).verify(anchor: DatanetID(hex: try Receipt(json: golden).datanet)).holds)
        guard case .object(var m) = tree else { Issue.record("not an object"); return }
        m.append(.init("contribution", .string(String(repeating: "b", count: 64))))
        tree = .object(m)
        #expect(performing: { try Receipt(json: Data(tree.serialized)) }, throws: { isMalformed($0, "key \"contribution\" appears twice") })
        // Inside a leaf entry's view too.
        var nested = try #require(JSONTree.parse(Array(golden)))
        let path = try #require(nested.paths().first { nested[$0] == nested[key: "intake"] })
        nested.edit(path) { v in if case .object(var e) = v { e.append(e[0]); v = .object(e) } }
        #expect(performing: { try Receipt(json: Data(nested.serialized)) }, throws: { isMalformed($0, "appears twice in one object") })
        // Keys that differ in bytes but are one key to Foundation (canonical equivalence).
        #expect(performing: { try StrictJSON.check(Data(#"{"K":1,"\u212a":2}"#.utf8)) }, throws: { isMalformed($0, "appears twice in one object") })
        #expect(performing: { try StrictJSON.check(Data("{\"\u{e9}\":1,\"e\u{301}\":2}".utf8)) }, throws: { isMalformed($0, "appears twice in one object") })
        try StrictJSON.check(Data(#"{"a":{"a":1},"b":[{"a":2},{"a":3}]}"#.utf8))
    }

    @Test func mutatedBundlesNeverCrashOrChangeTheStore() throws {
        let (w, c) = try BundleTests.world()
        let good = try BundleTests.export(w.ledger, w.datanet)
        let frames = BundleTests.frames(good)
        var rng = SplitMix64(seed: 11)
        var peer = try BundleTests.Peer()
        let before = peer.fingerprint
        var accepted = 0, refused = 0
        for round in 0..<300 {
            var bad: [UInt8]
            if round % 2 == 0 {
                // Damage inside one frame, end frame recomputed: the parsers and the replay see it.
                var f = frames
                let i = Int(rng.next() % UInt64(f.count - 1)) + 1
                rng.mutate(&f[i])
                bad = BundleTests.reassemble(f)
            } else {
                bad = good
                rng.mutate(&bad)
            }
            if bad == good { continue }
            if let s = try? BundleTests.importBytes(peer.ledger, bad) {
                // Some frame damage leaves an equivalent bundle (a frame nothing needs, such as a
                // sidecar no record names, now left out): the import must then equal the
                // honest one, and keep nothing the honest one would not.
                accepted += 1
                #expect(try peer.ledger.audit(w.datanet).holds, "round \(round)")
                #expect(try peer.ledger.reader.state(of: w.datanet).size == 5, "round \(round)")
                #expect(try peer.ledger.reader.decision(c.id) == 4, "round \(round)")
                #expect(s.objects <= 2 && s.objects + s.skipped >= 2, "round \(round): \(s)")
                peer = try BundleTests.Peer() // a fresh store for the next round
                continue
            }
            refused += 1
            #expect(peer.fingerprint == before, "round \(round) changed the store")
        }
        #expect(refused > 200)
    }
}
