import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Model records and leaves (schema/model.md, log.md): who may register a model, the binding to
/// a checkpoint of the log (checked at proposal, by the sequencer, and by every replay through
/// the leaf's consistency proof), `verifyModel`, and models and their artifacts traveling in
/// bundles.
@Suite struct ModelLeafTests {
    typealias World = LedgerTests.World

    /// A world with one accepted contribution and an artifact stored: (world, artifact).
    static func world() throws -> (World, AddResult) {
        let w = try World(quorum: 1)
        let c = try w.stored(Array("{\"text\": \"a wren\", \"label\": \"wren\"}\n".utf8))
        try w.ledger.propose(c)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(try w.review([c.id], accept: true, by: w.curatorA))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let path = w.dir + "-artifact"
        FileManager.default.createFile(atPath: path, contents: Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        defer { unlink(path) }
        return (w, try Ingest(store: w.ledger.store).add(paths: [path])[0])
    }

    /// A model of `w`'s Datanet naming the log at `size` (its root there unless `root` is given).
    static func model(_ w: World, _ artifact: AddResult, builder: SigningKey, size: UInt64? = nil, root: Digest? = nil,
                      name: String = "m") throws -> ModelRecord {
        let now = try w.ledger.reader.state(of: w.datanet).size
        let at = size ?? now
        let log = try w.ledger.merkleLog(w.datanet)
        let r = try root ?? w.ledger.env.read { txn in try log.root(txn, size: min(at, try log.size(txn))) }
        return ModelRecord(datanet: w.datanet, builder: builder.publicKey, name: name, checkpointSize: at, checkpointRoot: r,
                           trainer: "test", trainerVersion: "1", configuration: [("k", "1")], artifact: artifact.id, artifactSize: artifact.size,
                           training: .init(contributions: 1, examples: 1, bytes: 34, licenses: ["CC0-1.0"], tombstonesBefore: min(at, now)),
                           createdAt: 5)
    }

    @Test func aModelIsRegisteredVerifiedAndTravelsInBundles() throws {
        let (w, artifact) = try Self.world()
        // One naming the newest size (an empty proof), one an earlier size (a proof).
        let newest = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.owner, name: "newest"), by: w.owner)
        let earlier = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.curatorA, size: 2, name: "earlier"), by: w.curatorA)
        let size = try w.ledger.reader.state(of: w.datanet).size
        let run = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(run.models.map(\.record) == [newest.id, earlier.id] && run.models.map(\.index) == [size, size + 1])
        let leaves = try w.ledger.reader.leaves(w.datanet, from: size).map(\.leaf)
        #expect(leaves.map { $0.model?.proof.isEmpty } == [true, false])
        let held = try w.ledger.reader.models(of: w.datanet)
        #expect(held.map(\.id) == [newest.id, earlier.id] && held.map(\.leaf) == [size, size + 1])
        #expect(try w.ledger.reader.models(named: "earlier").map(\.id) == [earlier.id])
        for m in held { #expect(try w.ledger.verifyModel(m).checks.allSatisfy(\.holds), "\(m.record.name)") }
        #expect(try w.ledger.audit(w.datanet).holds)
        // Replayed by a peer from a bundle: leaves, and the artifact with them.
        let peer = try BundleTests.Peer()
        let summary = try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(summary.leaves == Int(size) + 2)
        #expect(try peer.ledger.reader.holdsObject(artifact.id, kind: .blob))
        #expect(try peer.ledger.audit(w.datanet).holds)
        for m in try peer.ledger.reader.models(of: w.datanet) { #expect(try peer.ledger.verifyModel(m).checks.allSatisfy(\.holds)) }
        // Records only: the leaves come, the artifact does not, and verify says so (n/a).
        let bare = try BundleTests.Peer()
        try BundleTests.importBytes(bare.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true))
        #expect(try !bare.ledger.reader.holdsObject(artifact.id, kind: .blob))
        let checks = try bare.ledger.verifyModel(try #require(try bare.ledger.reader.model(newest.id))).checks
        #expect(checks.first { $0.name.contains("artifact") }?.status == .notApplicable)
        // Served on demand under its Datanet only.
        #expect(try w.ledger.reader.servableContent(w.datanet, contribution: newest.id)?.contains(artifact.id) == true)
        #expect(try w.ledger.reader.servableContent(DatanetID(SHA256.hash([9])), contribution: newest.id) == nil)
    }

    /// A pending model's artifact travels with the pending record.
    @Test func aPendingModelCarriesItsArtifact() throws {
        let (w, artifact) = try Self.world()
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        let e = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.owner), by: w.owner)
        let size = try w.ledger.reader.state(of: w.datanet).size
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: size))
        #expect(try peer.ledger.reader.pendingRecords(w.datanet).map(\.id) == [e.id])
        #expect(try peer.ledger.reader.holdsObject(artifact.id, kind: .blob))
        #expect(try peer.ledger.reader.model(e.id)?.leaf == nil)
    }

    /// Review fixes: withdrawn content cannot come back as a model's artifact; gc keeps the
    /// artifacts of models a store received; the builder check survives a key handoff.
    @Test func artifactsRespectTombstonesAndGCAndHandoffs() throws {
        let (w, artifact) = try Self.world()
        let c = try w.stored(Array("withdrawn words".utf8))
        try w.ledger.propose(c)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        var withdraw = Envelope(kind: .tombstone, body: Tombstone(datanet: w.datanet, contribution: c.id, takedown: false, reason: "mine").body)
        try withdraw.sign(with: w.author)
        try w.ledger.propose(withdraw)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        guard case .contribution(let withdrawn) = try Record(c) else { Issue.record("not a contribution"); return }
        var copy = try Self.model(w, artifact, builder: w.owner, name: "copy")
        (copy.artifact, copy.artifactSize) = (withdrawn.content, withdrawn.size)
        #expect(throws: LedgerRefusal.modelNamesAnotherLog("its artifact is content a tombstone erased in this Datanet")) {
            try w.ledger.registerModel(copy, by: w.owner)
        }
        // A handoff, then a model under the new key: verify still checks the builder's role.
        let next = try SigningKey()
        _ = try w.ledger.proposeSequencer(w.datanet, key: next.publicKey, by: w.owner)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let e = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.curatorA), by: w.curatorA)
        #expect(try w.ledger.sequence(w.datanet, key: next).models.map(\.record) == [e.id])
        let checks = try w.ledger.verifyModel(try #require(try w.ledger.reader.model(e.id))).checks
        #expect(checks.first { $0.name == "its builder may register models" }?.status == .pass, "\(checks)")
        #expect(checks.allSatisfy { $0.holds })
        // A peer that received the model by bundle keeps its artifact through gc.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        _ = try peer.ledger.collectGarbage(dryRun: false)
        #expect(try peer.ledger.reader.holdsObject(artifact.id, kind: .blob))
        #expect(try peer.ledger.verifyModel(try #require(try peer.ledger.reader.model(e.id))).checks.allSatisfy(\.holds))
    }

    /// Policy-state field 10: absent without builders (old states keep their bytes), a sorted
    /// non-empty key list otherwise; an empty or unsorted list is refused.
    @Test func buildersFieldIsCanonical() throws {
        let k = [try SigningKey(), try SigningKey(), try SigningKey()].map(\.publicKey).sorted()
        let plain = PolicyState(name: "n", owner: k[0], sequencer: k[0], curators: [k[0]], quorum: 1, contributors: nil, readers: nil)
        let d = DatanetID(SHA256.hash([1]))
        func body(_ st: PolicyState) -> [UInt8] { PolicyChange(datanet: d, previous: RecordID(SHA256.hash([2])), state: st, summary: "s").body }
        var named = plain
        named.builders = [k[2], k[1]]
        #expect(try PolicyChange(body: body(named)).state.builders == [k[1], k[2]])
        #expect(try PolicyChange(body: body(plain)).state.builders.isEmpty)
        #expect(body(plain).count < body(named).count)
        func withField10(_ value: CBOR) throws -> [UInt8] {
            guard case .map(var top) = try CBOR.decode(body(plain)), case .map(var st) = top[2].value else { throw RecordError.malformed("shape") }
            st.append(.init(.unsigned(10), value))
            top[2] = .init(top[2].key, .map(st))
            return CBOR.map(top).encoded
        }
        #expect(throws: RecordError.self) { try PolicyChange(body: try withField10(.array([]))) }
        #expect(throws: RecordError.self) { try PolicyChange(body: try withField10(.array([.bytes(k[2].bytes), .bytes(k[1].bytes)]))) }
        #expect(try PolicyChange(body: try withField10(.array([.bytes(k[1].bytes)]))).state.builders == [k[1]])
    }

    @Test func onlyBuildersRegisterModelsOfThisLog() throws {
        let (w, artifact) = try Self.world()
        let st = try w.ledger.reader.state(of: w.datanet)
        // The author holds no role for models until the policy names it a builder.
        #expect(throws: LedgerRefusal.notABuilder(key: w.author.publicKey.description, datanet: "birds")) {
            try w.ledger.registerModel(try Self.model(w, artifact, builder: w.author), by: w.author)
        }
        try w.ledger.propose(try w.policyChange("add-builder", signedBy: [w.owner]) { $0.builders = [w.author.publicKey] })
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try w.ledger.reader.state(of: w.datanet).policy.builders == [w.author.publicKey])
        let byAuthor = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.author), by: w.author)
        // Another root at a size held here: refused at once.
        #expect(throws: LedgerRefusal.modelNamesAnotherLog("its root at size 2 is not the log's")) {
            try w.ledger.registerModel(try Self.model(w, artifact, builder: w.owner, size: 2, root: SHA256.hash([1])), by: w.owner)
        }
        // A size past this log: taken (a store behind may be asked), then refused by the sequencer.
        let ahead = try w.ledger.registerModel(try Self.model(w, artifact, builder: w.owner, size: st.size + 50, root: SHA256.hash([2])), by: w.owner)
        // Signed by someone else than the builder it names: refused as a record.
        var forged = Envelope(kind: .model, body: try Self.model(w, artifact, builder: w.owner).body)
        try forged.sign(with: w.curatorA)
        #expect(throws: (any Error).self) { try w.ledger.propose(forged) }
        let run = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(run.models.map(\.record) == [byAuthor.id])
        #expect(run.refused.map(\.record) == [ahead.id])
        #expect(run.refused.first?.reason.contains("the log has") == true)
        // The builder removed again: the author's next model is refused where it is proposed.
        try w.ledger.propose(try w.policyChange("remove-builder", signedBy: [w.owner]) { $0.builders = [] })
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(throws: LedgerRefusal.notABuilder(key: w.author.publicKey.description, datanet: "birds")) {
            try w.ledger.registerModel(try Self.model(w, artifact, builder: w.author, name: "again"), by: w.author)
        }
        #expect(try w.ledger.audit(w.datanet).holds)
    }

    /// A replay flags model leaves the sequencer should never have written: a builder without
    /// the role, a checkpoint of another log (a wrong proof, a wrong root, a size ahead), a model
    /// registered twice, a tombstone horizon past its leaf, another kind of record.
    @Test func theReplayFlagsForgedModelLeaves() throws {
        let (w, artifact) = try Self.world()
        let leaves = try w.ledger.reader.leaves(w.datanet).map(\.leaf)
        let size = UInt64(leaves.count)
        let policy = (UInt64(0), leaves[0].hash)
        func auditor() -> LogAuditor {
            var a = LogAuditor(datanet: w.datanet)
            for (i, leaf) in leaves.enumerated() { a.add(CheckedLeaf(index: UInt64(i), bytes: leaf.encoded)) }
            return a
        }
        func signed(_ m: ModelRecord, by k: SigningKey) throws -> Envelope {
            var e = Envelope(kind: .model, body: m.body)
            try e.sign(with: k)
            return e
        }
        let log = try w.ledger.merkleLog(w.datanet)
        let proofFrom2 = try w.ledger.env.read { txn in try log.consistencyProof(txn, size1: 2, size2: size) }
        let good = try signed(try Self.model(w, artifact, builder: w.owner, size: 2), by: w.owner)
        var cases: [(String, [Leaf.Payload], String)] = [
            ("no role", [.model(.init(record: try signed(try Self.model(w, artifact, builder: w.author, size: 2), by: w.author), proof: proofFrom2))],
             "a model's builder is the owner, a curator or a builder in force"),
            ("wrong proof", [.model(.init(record: good, proof: []))], "a model names a checkpoint of the log before it"),
            ("wrong root", [.model(.init(record: try signed(try Self.model(w, artifact, builder: w.owner, size: 2, root: SHA256.hash([3])), by: w.owner),
                                          proof: proofFrom2))], "a model names a checkpoint of the log before it"),
            ("ahead of the log", [.model(.init(record: try signed(try Self.model(w, artifact, builder: w.owner, size: size + 1, root: SHA256.hash([4])), by: w.owner),
                                                proof: []))], "a model names a checkpoint of the log before it"),
            ("a horizon past its leaf", [.model(.init(record: try signed({ var m = try Self.model(w, artifact, builder: w.owner, size: 2)
                                                                             m.training.tombstonesBefore = size + 1; return m }(), by: w.owner), proof: proofFrom2))],
             "a model's tombstone horizon is no later than its leaf"),
            ("a review in a model leaf", [.model(.init(record: try w.review([RecordID(SHA256.hash([5]))], accept: true, by: w.curatorA), proof: []))],
             "a model leaf carries a model"),
        ]
        // Twice: the second leaf's proof runs from size 2 to the log with the first model leaf.
        var twice = leaves.map(\.encoded)
        twice.append(Leaf(datanet: w.datanet, policy: policy, payload: .model(.init(record: good, proof: proofFrom2))).encoded)
        let withFirst = try Self.extendedProof(from: 2, leaves: twice)
        cases.append(("twice", [.model(.init(record: good, proof: proofFrom2)), .model(.init(record: good, proof: withFirst))], "a model is registered once"))
        for (what, payloads, rule) in cases {
            var a = auditor()
            for (k, p) in payloads.enumerated() {
                a.add(CheckedLeaf(index: size + UInt64(k), bytes: Leaf(datanet: w.datanet, policy: policy, payload: p).encoded))
            }
            #expect(a.violations.map(\.rule) == [rule], "\(what): \(a.violations)")
        }
        // The good one alone holds; so does one naming the log right before it (an empty proof).
        var a = auditor()
        a.add(CheckedLeaf(index: size, bytes: Leaf(datanet: w.datanet, policy: policy, payload: .model(.init(record: good, proof: proofFrom2))).encoded))
        #expect(a.violations.isEmpty)
        let atLeaf = try signed(try Self.model(w, artifact, builder: w.owner, size: size), by: w.owner)
        var b = auditor()
        b.add(CheckedLeaf(index: size, bytes: Leaf(datanet: w.datanet, policy: policy, payload: .model(.init(record: atLeaf, proof: []))).encoded))
        #expect(b.violations.isEmpty)
    }

    /// The RFC 9162 consistency proof from `from` to all of `leaves` (encoded), from an
    /// in-memory tree: a second computation beside the store's.
    static func extendedProof(from: UInt64, leaves: [[UInt8]]) throws -> [Digest] {
        let hashes = leaves.map(Merkle.leafHash)
        func root(_ r: Range<Int>) -> Digest { Merkle.root(leafHashes: Array(hashes[r])) }
        // RFC 9162 §2.1.4.1 SUBPROOF, recursively.
        func subproof(_ m: Int, _ r: Range<Int>, _ whole: Bool) -> [Digest] {
            let n = r.count
            if m == n { return whole ? [] : [root(r)] }
            var k = 1
            while k * 2 < n { k *= 2 }
            if m <= k { return subproof(m, r.lowerBound..<r.lowerBound + k, whole) + [root(r.lowerBound + k..<r.upperBound)] }
            return subproof(m - k, r.lowerBound + k..<r.upperBound, false) + [root(r.lowerBound..<r.lowerBound + k)]
        }
        return subproof(Int(from), 0..<hashes.count, true)
    }
}
