import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Golden receipts (schema/vectors/receipts/): a Datanet built from fixed keys and values, so
/// the good receipt is rebuilt byte for byte; each bad one is the good one with one value
/// changed, and `index.json` says which checks must fail. `DATANET_WRITE_GOLDENS=1` rewrites them.
@Suite struct ReceiptGoldenTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("schema/vectors/receipts")

    struct Expectation: Codable {
        var file: String
        var description: String
        var anchor: String
        var holds: Bool
        var anchored: Bool
        var failing: [String]
    }

    /// Genesis (two curators, quorum 2), contributions A and B, both curators accept A, then
    /// the owner removes curator 2 (quorum 1), then contribution C: A's receipt has a two-leaf
    /// policy chain and a last leaf that cites its end. `keys`: owner, sequencer, curator,
    /// author, curator 2.
    static func build(_ keys: [SigningKey], name: String) throws -> (Ledger, DatanetID, RecordID, String) {
        let (owner, sequencer, curator, author, curator2) = (keys[0], keys[1], keys[2], keys[3], keys[4])
        let dir = NSTemporaryDirectory() + "datanet-golden-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
        let state = PolicyState(name: name, owner: owner.publicKey, sequencer: sequencer.publicKey,
                                curators: [curator.publicKey, curator2.publicKey], quorum: 2, contributors: nil, readers: nil,
                                maxPendingProposals: 50, maxPendingBytes: 1 << 32)
        var g = Envelope(kind: .genesis, body: Genesis(policy: state, createdAt: 1_790_000_000_000, nonce: [UInt8](repeating: 7, count: 16)).body)
        try g.sign(with: owner)
        let d = try ledger.create(genesis: g, sequencerKey: sequencer)
        func contribution(_ text: String) throws -> Envelope {
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: d, author: author.publicKey, content: ObjectID(SHA256.hash(Array(text.utf8))), contentKind: .blob, size: 1024,
                mediaType: "audio/flac", license: "CC-BY-4.0", sidecar: SHA256.hash(Array("sidecar \(text)".utf8)),
                createdAt: 1_790_000_100_000).body)
            try e.sign(with: author)
            return e
        }
        let a = try contribution("recording A"), b = try contribution("recording B")
        try ledger.propose(all: [a, b])
        _ = try ledger.sequence(d, key: sequencer)
        let reviews = try [curator, curator2].map { k -> Envelope in
            var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: k.publicKey, contributions: [a.id], accept: true, reason: "clean").body)
            try e.sign(with: k)
            return e
        }
        try ledger.propose(all: reviews)
        _ = try ledger.sequence(d, key: sequencer)
        var next = state
        next.curators = [curator.publicKey]; next.quorum = 1
        var p = Envelope(kind: .policy, body: PolicyChange(datanet: d, previous: d.genesis, state: next, summary: "remove curator 2").body)
        try p.sign(with: owner)
        try ledger.propose(p)
        _ = try ledger.sequence(d, key: sequencer)
        try ledger.propose(try contribution("recording C"))
        _ = try ledger.sequence(d, key: sequencer)
        return (ledger, d, a.id, dir)
    }

    /// The good receipt, and each bad variant with what it must fail.
    static func variants(_ good: Receipt, other: Receipt) -> [(Receipt, String, [String])] {
        var out = [(Receipt, String, [String])]()
        func edit(_ description: String, _ failing: [String], _ change: (inout Receipt) -> Void) {
            var r = good
            change(&r)
            out.append((r, description, failing))
        }
        edit("the view of the intake leaf does not match its bytes", ["receipt is well-formed"]) { $0.intake.view = .string("edited") }
        edit("one hash of the intake leaf's inclusion proof changed", ["leaf 1 included"]) {
            $0.intake.proof[0] = Data(Digest.zero.bytes).base64EncodedString()
        }
        edit("one byte of the checkpoint's signature changed", ["checkpoint signature"]) {
            var lines = $0.checkpoint.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let parts = lines[4].split(separator: " ").map(String.init)
            var sig = Array(Data(base64Encoded: parts[2])!)
            sig[20] ^= 1
            lines[4] = parts[0] + " " + parts[1] + " " + Data(sig).base64EncodedString()
            $0.checkpoint = lines.joined(separator: "\n")
        }
        edit("the later policy change (curator 2 removed) left out of the chain", ["policy chain reaches the checkpoint"]) { $0.chain.removeLast() }
        edit("the receipt names another contribution than its leaves hold", ["intake leaf", "decision leaf", "reviews sufficient under the cited policy"]) {
            $0.contribution = String(repeating: "ab", count: 32)
        }
        edit("the decision leaf of another contribution", ["decision leaf"]) { $0.decision = $0.intake }
        edit("one of the two review leaves the decision cites left out", ["decision leaf", "reviews sufficient under the cited policy"]) {
            $0.reviews?.removeLast()
        }
        out.append((other, "a receipt from a look-alike Datanet (same name, other keys)", ["anchored"]))
        return out
    }

    @Test func goldenReceipts() throws {
        let keys = RecordSamples.fixedKeys()
        let (ledger, d, a, dir) = try Self.build(keys, name: "birdsong")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try ledger.provenance.receipt(for: a)
        // The look-alike: the same story and name under other keys (roles rotated).
        let (otherLedger, _, otherA, otherDir) = try Self.build(Array(keys[1...]) + [keys[0]], name: "birdsong")
        defer { try? FileManager.default.removeItem(atPath: otherDir) }
        let other = try otherLedger.provenance.receipt(for: otherA)
        if ProcessInfo.processInfo.environment["DATANET_WRITE_GOLDENS"] != nil {
            try FileManager.default.createDirectory(at: Self.dir, withIntermediateDirectories: true)
            try good.json.write(to: Self.dir.appendingPathComponent("good.json"))
            var index = [Expectation(file: "good.json", description: "contribution A, accepted by both curators, at the checkpoint of size 8",
                                     anchor: d.hex, holds: true, anchored: true, failing: [])]
            for (i, (r, description, failing)) in Self.variants(good, other: other).enumerated() {
                let file = "bad-\(i + 1).json"
                try r.json.write(to: Self.dir.appendingPathComponent(file))
                index.append(Expectation(file: file, description: description, anchor: d.hex, holds: false,
                                         anchored: !failing.contains("anchored") && !failing.contains("receipt is well-formed"), failing: failing))
            }
            // Written by the build before review leaves (kept, never rewritten): logs and
            // receipts made then verify under the rule they were made with.
            index.append(Expectation(file: "legacy-v1.json", description: "contribution A's receipt as written before review leaves (datanet/receipt/v1: the reviews inside the decision leaf)",
                                     anchor: d.hex, holds: true, anchored: true, failing: []))
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try e.encode(index).write(to: Self.dir.appendingPathComponent("index.json"))
        }
        // Rebuilt byte for byte from the fixed keys and values.
        #expect(try good.json == Data(contentsOf: Self.dir.appendingPathComponent("good.json")))
        // schema/checkpoint.md's example note is this receipt's checkpoint, verbatim.
        let doc = try String(contentsOf: Self.dir.appendingPathComponent("../../checkpoint.md").standardized, encoding: .utf8)
        let example = try #require(doc.components(separatedBy: "```note\n").dropFirst().first?.components(separatedBy: "```").first)
        #expect(example == good.checkpoint, "schema/checkpoint.md's example is not the golden receipt's checkpoint")
        let index = try JSONDecoder().decode([Expectation].self, from: Data(contentsOf: Self.dir.appendingPathComponent("index.json")))
        #expect(index.count == 10)
        for x in index {
            let r = try Receipt(json: try Data(contentsOf: Self.dir.appendingPathComponent(x.file)))
            let v = r.verify(anchor: DatanetID(hex: x.anchor))
            #expect(v.holds == x.holds && v.anchored == x.anchored, "\(x.file): \(x.description)")
            #expect(ReceiptTests.failing(v) == x.failing, "\(x.file): \(ReceiptTests.failing(v))")
        }
    }
}
