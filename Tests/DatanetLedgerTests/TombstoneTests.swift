import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Withdrawal and takedown: a tombstone leaf; content and sidecar dropped everywhere, the
/// contribution's id, leaves and proofs still valid; gc deletes only what nothing live reaches.
@Suite struct TombstoneTests {
    typealias World = LedgerTests.World

    /// An accepted contribution with content and a sidecar in the store.
    static func world() throws -> (World, Envelope, ObjectID) {
        let w = try World()
        let file = w.dir + "-song.txt"
        FileManager.default.createFile(atPath: file, contents: Data("a song of the dawn".utf8))
        defer { unlink(file) }
        let blob = try Ingest(store: w.ledger.store).add(paths: [file])[0].id
        let sidecar = try w.ledger.storeSidecar(Sidecar(label: "dawn chorus", fileName: "dawn.txt", metadata: ["place": "Kielder"]))
        var c = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.author.publicKey, content: blob, contentKind: .blob, size: 18, mediaType: "text/plain",
            license: "CC0-1.0", sidecar: sidecar, createdAt: 2).body)
        try c.sign(with: w.author)
        try w.ledger.propose(c)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(all: [try w.review([c.id], accept: true, by: w.curatorA), try w.review([c.id], accept: true, by: w.curatorB)])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        return (w, c, blob)
    }

    static func tombstone(_ w: World, _ c: Envelope, takedown: Bool, by keys: [SigningKey]) throws -> Envelope {
        var e = Envelope(kind: .tombstone, body: Tombstone(datanet: w.datanet, contribution: c.id, takedown: takedown, reason: "asked").body)
        for k in keys { try e.sign(with: k) }
        return e
    }

    @Test func withdrawalDropsContentAndKeepsProofs() throws {
        let (w, c, blob) = try Self.world()
        // An exact copy by someone else, rejected at intake (leaves 5, 6): it must not keep
        // the withdrawn content alive.
        var copy = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.curatorA.publicKey, content: blob, contentKind: .blob, size: 18, mediaType: "text/plain",
            license: "CC0-1.0", sidecar: .zero, createdAt: 3).body)
        try copy.sign(with: w.curatorA)
        try w.ledger.propose(copy)
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.accepted) == [false])
        let receipt = try w.ledger.provenance.receipt(for: c.id)
        // Only the author may withdraw. A key with no role for a tombstone is not even taken in
        // (signature stuffing: trust model, item 8); a curator's withdrawal is refused in sequencing.
        #expect(throws: LedgerRefusal.unauthorized(kind: "tombstone", needs: "a signature by a key that holds a role for it in the policy in force")) {
            try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.outsider]))
        }
        try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.curatorA]))
        var r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.tombstones.isEmpty && r.refused.first?.refusal == .unauthorized(kind: "withdrawal", needs: "to be signed by the contribution's author"))
        try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.author]))
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.tombstones.map(\.index) == [7])
        #expect(try w.ledger.reader.tombstone(c.id) == 7)
        // The sidecar is erased at once; the content goes at gc, which a dry run only counts.
        #expect(try w.ledger.env.read { txn in try txn.get(w.ledger.sidecars, try Contribution(body: c.body).sidecar) } == nil)
        let dry = try w.ledger.collectGarbage(dryRun: true)
        #expect(dry.sweep.blobs == 1 && dry.sweep.chunks == 1 && dry.sweep.roots == 1)
        #expect(try w.ledger.store.blob(blob) != nil)
        let gc = try w.ledger.collectGarbage(dryRun: false)
        #expect(gc.sweep.blobs == 1 && gc.tombstoned == 1)
        #expect(try w.ledger.store.blob(blob) == nil)
        #expect(try w.ledger.collectGarbage(dryRun: false).sweep.blobs == 0)
        // The old receipt's proofs still verify, and it says what happened since: here, where
        // the tombstone is held, it fails unless withdrawn contributions are allowed.
        let v = try w.ledger.provenance.verify(receipt, anchor: w.datanet)
        #expect(!v.holds && v.checks.filter { !$0.holds }.map(\.name) == ["not withdrawn"])
        #expect(v.checks.last?.detail == "withdrawn at leaf 7 in this store's log: its content and label are erased (--allow-withdrawn accepts this)")
        #expect(try w.ledger.provenance.verify(receipt, anchor: w.datanet, allowWithdrawn: true).holds)
        #expect(try w.ledger.provenance.verify(try w.ledger.provenance.receipt(for: c.id), anchor: w.datanet, allowWithdrawn: true).holds)
        #expect(receipt.verify(anchor: w.datanet).holds) // where no tombstone is known
        #expect(try w.ledger.audit(w.datanet).holds)
        // A second tombstone for it is refused; the dataset export leaves it out.
        try w.ledger.propose(try Self.tombstone(w, c, takedown: true, by: [w.owner]))
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).refused.count == 1)
    }

    /// The label, file name and metadata live only in the sidecar, which decodes strictly.
    @Test func sidecarHoldsTheErasableFields() throws {
        let (w, c, _) = try Self.world()
        let contribution = try Contribution(body: c.body)
        let s = try #require(try w.ledger.reader.sidecar(of: contribution))
        #expect(s.label == "dawn chorus" && s.fileName == "dawn.txt" && s.metadata == ["place": "Kielder"])
        #expect(try Sidecar(encoded: s.encoded) == s && s.hash == contribution.sidecar)
        #expect(!c.body.contains(Array("dawn".utf8)))
        var extra = s.encoded
        extra[0] += 1 // one more map entry than the bytes hold
        for bad in [extra, Array(s.encoded.dropLast())] {
            #expect { try Sidecar(encoded: bad) } throws: { e in
                if case .cbor(let c)? = e as? RecordError { [.truncated, .lengthTooLarge].contains(c.code) } else { false }
            }
        }
    }

    @Test func takedownNeedsOwnerOrQuorum() throws {
        let (w, c, _) = try Self.world()
        try w.ledger.propose(try Self.tombstone(w, c, takedown: true, by: [w.curatorA])) // one of two, quorum 2
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).tombstones.isEmpty)
        try w.ledger.propose(try Self.tombstone(w, c, takedown: true, by: [w.curatorA, w.curatorB]))
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).tombstones.count == 1)
    }

    @Test func replicasDropContentThroughBundles() throws {
        let (w, c, blob) = try Self.world()
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try peer.ledger.store.blob(blob) != nil)
        try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.author]))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        _ = try w.ledger.collectGarbage(dryRun: false)
        // The sequencer no longer has the content, and its bundles do not need it.
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: 5))
        #expect(try peer.ledger.reader.tombstone(c.id) == 5)
        _ = try peer.ledger.collectGarbage(dryRun: false)
        #expect(try peer.ledger.store.blob(blob) == nil)
        let fresh = try BundleTests.Peer()
        #expect(try BundleTests.importBytes(fresh.ledger, try BundleTests.export(w.ledger, w.datanet)).objects == 0)
        #expect(try fresh.ledger.audit(w.datanet).holds)
        // Exported datasets leave it out.
        let dir = w.dir + "-x"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try w.ledger.exportDataset(w.datanet, at: nil, to: dir).entries.isEmpty)
    }

    /// An exact copy of withdrawn content (rejected at intake, under no tombstone of its own)
    /// loses that content at gc with the original: bundles of the whole log still export (the
    /// copy's content is left out, as an import expects) and a fresh store takes them.
    @Test func bundlesExportAfterACopiedContentIsErased() throws {
        let log = try EveryKindLog()
        let w = log.world
        _ = try w.ledger.collectGarbage(dryRun: false)
        let copy = try #require(try w.ledger.reader.statuses(w.datanet).first { $0.reason?.hasPrefix("duplicate of") == true })
        #expect(try w.ledger.store.blob(copy.contribution.content) == nil, "gc dropped the copy's content with the withdrawn original")
        let fresh = try BundleTests.Peer()
        let summary = try BundleTests.importBytes(fresh.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(summary.newLeaves == Int(try w.ledger.reader.state(of: w.datanet).size))
        #expect(try fresh.ledger.audit(w.datanet).holds)
        #expect(try fresh.ledger.store.blob(copy.contribution.content) == nil)
    }

    /// The hardening issue's defect: after a tombstone and gc, re-importing a bundle from
    /// before it stored the content and erased sidecar again (`cat` served it; gc kept it).
    /// Now every later import leaves out what the tombstone erased, in this store and in a
    /// fresh one that imports the old bundle after the new, and the erasure survives gc.
    @Test func olderBundlesCannotUndoATombstone() throws {
        let (w, c, blob) = try Self.world()
        let old = try BundleTests.export(w.ledger, w.datanet)
        let sidecar = try Contribution(body: c.body).sidecar
        let peer = try BundleTests.Peer()
        #expect(try BundleTests.importBytes(peer.ledger, old).sidecars == 1)
        try w.ledger.propose(try Self.tombstone(w, c, takedown: true, by: [w.owner]))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let new = try BundleTests.export(w.ledger, w.datanet)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: 3))
        _ = try peer.ledger.collectGarbage(dryRun: false)
        func erased(_ l: Ledger) throws -> Bool {
            try l.store.blob(blob) == nil && l.env.read { txn in try txn.get(l.sidecars, sidecar) } == nil
        }
        #expect(try erased(peer.ledger))
        let again = try BundleTests.importBytes(peer.ledger, old)
        #expect(again.objects == 0 && again.sidecars == 0 && again.skipped == 3) // blob, chunk, sidecar
        #expect(try erased(peer.ledger))
        #expect(try peer.ledger.exportDataset(w.datanet, at: 2, to: peer.dir + "-x").entries.isEmpty)
        try? FileManager.default.removeItem(atPath: peer.dir + "-x")
        _ = try peer.ledger.collectGarbage(dryRun: false)
        #expect(try erased(peer.ledger))
        let fresh = try BundleTests.Peer()
        try BundleTests.importBytes(fresh.ledger, new)
        #expect(try BundleTests.importBytes(fresh.ledger, old).skipped == 3)
        #expect(try erased(fresh.ledger))
        // Stores from before the erasures table fill it on their next writable open.
        try peer.ledger.env.write { txn in
            var keys = [[UInt8]]()
            try txn.scan(peer.ledger.erasures!) { k, _ in keys.append(Array(k)); return true }
            for k in keys { try txn.delete(peer.ledger.erasures!, k) }
            try txn.delete(peer.ledger.meta, Ledger.erasuresFilled)
        }
        let reopened = try Ledger(store: peer.ledger.store)
        #expect(try reopened.env.read { txn in try reopened.isErased(txn, w.datanet, contribution: c.id) })
        #expect(try BundleTests.importBytes(reopened, old).skipped == 3)
    }

    /// Content a tombstone erased in one Datanet stays storable where a live contribution uses
    /// it: an earlier contribution of the same Datanet, or one in another Datanet; gc keeps it.
    @Test func liveContributionsKeepSharedContent() throws {
        let (w, c, blob) = try Self.world()
        let other = try LedgerTests.World(quorum: 1)
        let path = other.dir + "-song.txt"
        FileManager.default.createFile(atPath: path, contents: Data("a song of the dawn".utf8))
        defer { unlink(path) }
        #expect(try Ingest(store: other.ledger.store).add(paths: [path])[0].id == blob)
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: other.datanet, author: other.author.publicKey, content: blob, contentKind: .blob, size: 18, mediaType: "text/plain",
            license: "CC0-1.0", sidecar: .zero, createdAt: 5).body)
        try e.sign(with: other.author)
        try other.ledger.propose(e)
        _ = try other.ledger.sequence(other.datanet, key: other.sequencer)
        // One store following both Datanets; the song is withdrawn from the first only.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.author]))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: 3))
        _ = try peer.ledger.collectGarbage(dryRun: false)
        #expect(try peer.ledger.store.blob(blob) == nil)
        #expect(try BundleTests.importBytes(peer.ledger, try BundleTests.export(other.ledger, other.datanet)).objects == 2)
        _ = try peer.ledger.collectGarbage(dryRun: false)
        #expect(try peer.ledger.store.blob(blob) != nil)
    }

    /// Review finding: a sidecar's hash is public, so another record can name it. A copy
    /// withdrawn must not erase the victim's label (only the owner's tombstone does: the
    /// earliest intake naming the hash), and a copy made after an erasure cannot bring it back.
    @Test func copiedSidecarHashesNeitherEraseNorRevive() throws {
        let (w, c, _) = try Self.world()
        let sidecar = try Contribution(body: c.body).sidecar
        func copy(_ createdAt: UInt64) throws -> Envelope {
            try w.stored(Array("copy \(createdAt)".utf8), by: w.outsider, sidecar: sidecar, createdAt: createdAt)
        }
        let thief = try copy(50)
        try w.ledger.propose(thief)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(try Self.tombstone(w, thief, takedown: false, by: [w.outsider]))
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).tombstones.count == 1)
        #expect(try w.ledger.reader.sidecar(of: try Contribution(body: c.body)) != nil)
        // A replica importing the whole log keeps the victim's sidecar too.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try peer.ledger.reader.sidecar(of: try Contribution(body: c.body)) != nil)
        // The owner's own withdrawal erases it; a later copy does not revive it on re-import.
        let old = try BundleTests.export(w.ledger, w.datanet)
        try w.ledger.propose(try Self.tombstone(w, c, takedown: false, by: [w.author]))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(try copy(51))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try peer.ledger.reader.sidecar(of: try Contribution(body: c.body)) == nil)
        try BundleTests.importBytes(peer.ledger, old)
        #expect(try peer.ledger.reader.sidecar(of: try Contribution(body: c.body)) == nil)
    }

    /// A sidecar no live contribution names is collected by gc.
    @Test func gcCollectsUnreferencedSidecars() throws {
        let (w, c, _) = try Self.world()
        let stray = try w.ledger.storeSidecar(Sidecar(label: "stray", fileName: "", metadata: [:]))
        let r = try w.ledger.collectGarbage(dryRun: false)
        #expect(r.sidecars == 1)
        #expect(try w.ledger.env.read { txn in try txn.get(w.ledger.sidecars, stray) } == nil)
        #expect(try w.ledger.reader.sidecar(of: try Contribution(body: c.body)) != nil)
    }

    @Test func forgedTombstonesAreCaughtByAudit() throws {
        let (w, c, _) = try Self.world()
        let forged = try Self.tombstone(w, c, takedown: false, by: [w.outsider])
        try AuditTests.appendForged(w, .tombstone(.init(record: forged, contribution: c.id, intake: 1)))
        #expect(try w.ledger.audit(w.datanet).violations.map(\.rule) == ["a withdrawal is signed by the author"])
    }
}
