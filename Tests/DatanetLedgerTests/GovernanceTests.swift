import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Governance across time and stores: an honest sequencer handoff and the key in force at each
/// size, a curator quorum gathered in separate stores, the curation rows about when a review
/// counts (schema/curation.md), and the byte quota.
@Suite struct GovernanceTests {
    typealias World = LedgerTests.World

    /// The root of the log's first `size` leaves.
    static func root(_ w: World, size: Int) throws -> Digest {
        Merkle.root(leafHashes: Array(try w.ledger.reader.leaves(w.datanet).map(\.leaf.hash)[0..<size]))
    }

    /// A set-sequencer leaf at i: the checkpoint of size i + 1 is the old key's last, every
    /// later one the new key's; checkpoints are judged under the key in force at their size.
    @Test func setSequencerHandsOverAtTheNextLeaf() throws {
        let w = try World(quorum: 1)
        try w.ledger.propose(try w.contribution("before"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let st = try w.ledger.reader.state(of: w.datanet)
        #expect(st.size == 2)
        let next = try SigningKey()
        let handoff = try w.ledger.proposeSequencer(w.datanet, key: next.publicKey, by: w.owner)
        #expect(try SetSequencer(body: handoff.body).takesOver.map { $0.size } == 2)
        let after = try w.contribution("after")
        try w.ledger.propose(after)
        // The old key appends the handoff (leaf 2) and signs size 3; the contribution waits.
        let first = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(first.policies.map(\.index) == [2] && first.intakes.isEmpty && first.size == 3)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).map(\.id) == [after.id])
        #expect(throws: LedgerRefusal.notSequencer(key: w.sequencer.publicKey.description, sequencer: next.publicKey.description)) {
            try w.ledger.sequence(w.datanet, key: w.sequencer)
        }
        let second = try w.ledger.sequence(w.datanet, key: next)
        #expect(second.intakes.map(\.index) == [3] && second.intakes[0].promise.sequencer == next.publicKey)
        // Every stored checkpoint is signed by the key in force at its size, and observing it here is consistent.
        let held = try w.ledger.reader.checkpoints(w.datanet)
        #expect(held.map(\.size) == [1, 2, 3, 4])
        for (size, note) in held {
            let key = size <= 3 ? w.sequencer : next
            #expect(try Checkpoint.verify(note: note, key: key.publicKey).size == size)
            #expect(try w.ledger.observe(note: note, datanet: w.datanet) == .consistent(size: size))
        }
        // The right root under the wrong key is refused on either side of the handoff.
        let origin = Checkpoint.origin(of: w.datanet)
        let newKeyOnOldSize = try Checkpoint(origin: origin, size: 3, root: try Self.root(w, size: 3)).signed(by: next)
        let oldKeyOnNewSize = try Checkpoint(origin: origin, size: 4, root: try Self.root(w, size: 4)).signed(by: w.sequencer)
        for note in [newKeyOnOldSize, oldKeyOnNewSize] {
            #expect { try w.ledger.observe(note: note, datanet: w.datanet) } throws: { e in
                if case .checkpointRefused? = e as? LedgerRefusal { true } else { false }
            }
        }
        #expect(try w.ledger.audit(w.datanet).holds)
        #expect(try w.ledger.provenance.verify(try w.ledger.provenance.receipt(for: after.id), anchor: w.datanet).holds)
    }

    /// Two curators in two stores sign one policy change: the second signature travels back in
    /// a bundle and joins the pending copy, which then meets the quorum.
    @Test func aQuorumIsGatheredAcrossStores() throws {
        let w = try World(quorum: 2)
        let st = try w.ledger.reader.state(of: w.datanet)
        let change = try w.policyChange("remove B", signedBy: [w.curatorA]) { $0.curators = [w.curatorA.publicKey]; $0.quorum = 1 }
        try w.ledger.propose(change)
        // Curator B follows the Datanet in its own store, receives the pending change and signs it there.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        var theirs = try #require(try peer.ledger.reader.pendingRecords(w.datanet).first)
        #expect(theirs.id == change.id && theirs.signatures.count == 1)
        try theirs.sign(with: w.curatorB)
        try peer.ledger.addSignatures(theirs)
        let back = try BundleTests.export(peer.ledger, w.datanet, since: st.size, recordsOnly: true)
        let summary = try BundleTests.importBytes(w.ledger, back)
        #expect(summary.signatures == 1 && summary.records == 0)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).first?.signatures.count == 2)
        #expect(try BundleTests.importBytes(w.ledger, back).signatures == 0) // twice changes nothing
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.count == 1 && r.refused.isEmpty)
        #expect(try w.ledger.reader.state(of: w.datanet).policy.curators == [w.curatorA.publicKey])
        // A signature that does not verify is refused, and the copy is unchanged.
        var forged = theirs
        forged.add((w.outsider.publicKey, try w.curatorB.sign(Array("not the message".utf8))))
        #expect(throws: RecordError.badSignature(publicKey: w.outsider.publicKey.description)) { try peer.ledger.addSignatures(forged) }
        #expect(try peer.ledger.reader.pendingRecords(w.datanet).first?.signatures.count == 2)
    }

    /// Signature stuffing (trust model, item 8): valid signatures by keys with no role for a
    /// record are dropped where it enters, by a proposal, a merge or a bundle, so no one can pad
    /// a pending policy change or a review that leaves and receipts must carry.
    @Test func signaturesWithoutARoleAreDropped() throws {
        let w = try World(quorum: 2)
        var change = try w.policyChange("remove B", signedBy: [w.curatorA]) { $0.curators = [w.curatorA.publicKey]; $0.quorum = 1 }
        let junk = try (0..<20).map { _ in try SigningKey() }
        for k in junk { try change.sign(with: k) }
        try w.ledger.propose(change)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).first?.signatures.map(\.key) == [w.curatorA.publicKey])
        var more = change
        for k in try (0..<20).map({ _ in try SigningKey() }) { try more.sign(with: k) }
        try w.ledger.addSignatures(more)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).first?.signatures.count == 1)
        // A relayed copy carrying only such signatures adds nothing and refuses nothing (a
        // bundle bringing it still imports).
        var onlyJunk = Envelope(kind: .policy, body: change.body)
        for k in junk.prefix(3) { try onlyJunk.sign(with: k) }
        try w.ledger.addSignatures(onlyJunk)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).first?.signatures.count == 1)
        try more.sign(with: w.curatorB)
        try w.ledger.addSignatures(more)
        #expect(Set(try #require(try w.ledger.reader.pendingRecords(w.datanet).first).signatures.map(\.key)) == [w.curatorA.publicKey, w.curatorB.publicKey])
        // A review keeps its reviewer's signature only; a record no role holder signed is refused.
        let c = try w.contribution("a text to review")
        try w.ledger.propose(c)
        var review = try w.review([c.id], accept: true, by: w.curatorA)
        for k in junk { try review.sign(with: k) }
        try w.ledger.propose(review)
        #expect(try w.ledger.reader.record(review.id)?.signatures.map(\.key) == [w.curatorA.publicKey])
        var stranger = try w.policyChange("stranger", signedBy: []) { $0.quorum = 1 }
        try stranger.sign(with: w.outsider)
        #expect(throws: LedgerRefusal.unauthorized(kind: "policy", needs: "a signature by a key that holds a role for it in the policy in force")) {
            try w.ledger.propose(stranger)
        }
    }

    /// curation.md: a review waits in pending until its contribution is taken in; reviews by a
    /// curator removed before the decision do not count; a review after the decision is refused.
    @Test func whenAReviewCounts() throws {
        let w = try World(quorum: 1)
        let c = try w.contribution("song")
        // The review arrives first (another route than the contribution): it waits.
        try w.ledger.propose(try w.review([c.id], accept: true, by: w.curatorB))
        var r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.isEmpty && r.refused.isEmpty)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).count == 1)
        // The owner removes curator B before the contribution is decided: B's waiting review no longer counts.
        try w.ledger.propose(try w.policyChange("remove B", signedBy: [w.owner]) { $0.curators = [w.curatorA.publicKey] })
        try w.ledger.propose(c)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.count == 1 && r.intakes.map(\.record) == [c.id] && r.decisions.isEmpty)
        #expect(try w.ledger.reader.undecidedContributions(w.datanet).map(\.id) == [c.id])
        // Curator A's accept decides it, and only A's review is in the decision leaf.
        let byA = try w.review([c.id], accept: true, by: w.curatorA)
        try w.ledger.propose(byA)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.map(\.contribution) == [c.id] && r.decisions[0].accepted)
        let leaf = try #require(try w.ledger.reader.leaves(w.datanet).last?.leaf)
        #expect(try w.ledger.reader.reviews(of: #require(leaf.decision), in: w.datanet).map(\.id) == [byA.id])
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty && w.ledger.reader.undecidedContributions(w.datanet).isEmpty)
        // A reject after the decision leaf: no leaf, the decision stands, the review leaves pending.
        // A review after the decision leaf is refused, naming the leaf (through the operation
        // that gives it, and as a proposal from elsewhere); the decision stands.
        let size = try w.ledger.reader.state(of: w.datanet).size
        let late = try w.review([c.id], accept: false, by: w.curatorA)
        #expect(throws: LedgerRefusal.alreadyDecided(contribution: c.id.hex, leaf: size - 1)) { try w.ledger.propose(late) }
        #expect(throws: LedgerRefusal.alreadyDecided(contribution: c.id.hex, leaf: size - 1)) {
            try w.ledger.review(w.datanet, contributions: [c.id], accept: false, reason: "", createdAt: 1, by: w.curatorA)
        }
        // One naming a decided and an undecided contribution: the operation refuses it, a
        // relayed copy is taken (it still counts for the undecided one).
        let d2 = try w.contribution("still open")
        try w.ledger.propose(d2)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let both = try w.review([c.id, d2.id], accept: false, by: w.curatorA)
        #expect(throws: LedgerRefusal.alreadyDecided(contribution: c.id.hex, leaf: size - 1)) {
            try w.ledger.review(w.datanet, contributions: [c.id, d2.id], accept: false, reason: "", createdAt: 1, by: w.curatorA)
        }
        try w.ledger.propose(both)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.map(\.contribution) == [d2.id] && r.decisions[0].accepted == false)
        #expect(try w.ledger.reader.decision(c.id) == size - 1)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
        #expect(try w.ledger.audit(w.datanet).holds)
    }

    /// A bundle frame holding `p` (schema/bundle.md: type ‖ u32 length ‖ payload).
    static func promiseFrame(_ p: IntakePromise) -> [UInt8] {
        let bytes = p.encoded
        let n = UInt32(bytes.count)
        let length: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        return [BundleFrame.promise.rawValue] + length + bytes
    }

    /// The intake promise travels back to the contributor: bundles carry promises, a store keeps
    /// those for its own identities' contributions once each checks, and a forged one is refused.
    @Test func intakePromisesReachTheContributor() throws {
        let (w, c) = try BundleTests.world()
        let bundle = try BundleTests.export(w.ledger, w.datanet)
        let contributor = try BundleTests.Peer(), bystander = try BundleTests.Peer()
        try IdentityStore(storeDirectory: contributor.dir).save(
            try Identity(name: "author", signingKey: w.author, agreementKey: try X25519PrivateKey(), createdAt: 1))
        #expect(try BundleTests.importBytes(contributor.ledger, bundle).promises == 1)
        let kept = try #require(try contributor.ledger.reader.promise(c.id))
        let original = try w.ledger.reader.promise(c.id)
        #expect(kept.isValid && kept.sequencer == w.sequencer.publicKey && kept == original)
        #expect(try BundleTests.importBytes(bystander.ledger, bundle).promises == 0)
        #expect(try bystander.ledger.reader.promise(c.id) == nil)
        // A promise frame with one signature byte changed: the contributor's store refuses the bundle.
        var frames = BundleTests.frames(bundle)
        let at = try #require(frames.firstIndex { $0[0] == BundleFrame.promise.rawValue })
        frames[at][frames[at].count - 1] ^= 1
        let forged = BundleTests.reassemble(frames)
        let fresh = try BundleTests.Peer()
        try IdentityStore(storeDirectory: fresh.dir).save(
            try Identity(name: "author", signingKey: w.author, agreementKey: try X25519PrivateKey(), createdAt: 1))
        let before = fresh.fingerprint
        #expect(performing: { try BundleTests.importBytes(fresh.ledger, forged) }, throws: { isBundleError($0, refused: true, "not signed by the sequencer key") })
        #expect(fresh.fingerprint == before)
        // A valid signature by a key that is not the sequencer's at that leaf: refused too.
        var byOwner = BundleTests.frames(bundle)
        let sent = try IntakePromise(encoded: Array(byOwner[at][5...]))
        byOwner[at] = Self.promiseFrame(try IntakePromise(datanet: sent.datanet, index: sent.index, leafHash: sent.leafHash,
                                                          record: sent.record, key: w.owner))
        #expect { try BundleTests.importBytes(fresh.ledger, BundleTests.reassemble(byOwner)) } throws: {
            "\($0)".contains("not signed by the sequencer key")
        }
        #expect(fresh.fingerprint == before)
        // A promise naming another leaf's hash is refused by every store.
        var moved = BundleTests.frames(bundle)
        var p = try IntakePromise(encoded: Array(moved[at][5...]))
        p.leafHash = SHA256.hash([1])
        moved[at] = Self.promiseFrame(p)
        #expect { try BundleTests.importBytes(try BundleTests.Peer().ledger, BundleTests.reassemble(moved)) } throws: {
            "\($0)".contains("does not match that leaf")
        }
    }

    /// The per-author byte quota: a proposal that would take an author past it waits in pending
    /// (deferred) and is taken in once earlier ones are decided; one that could never fit is refused.
    @Test func byteQuotaIsEnforced() throws {
        let w = try World(quorum: 1, maxPendingBytes: 150) // each sample contribution is 100 bytes
        let one = try w.contribution("one"), two = try w.contribution("two")
        try w.ledger.propose(all: [one, two])
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.intakes.map(\.record) == [one.id] && r.refused.isEmpty)
        #expect(r.deferred.map(\.record) == [two.id] && r.deferred[0].count == 1 && r.deferred[0].bytes == 100)
        #expect(try w.ledger.reader.state(of: w.datanet).size == 2)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).map(\.id) == [two.id])
        // Deciding the first frees its bytes: the waiting proposal is then taken in, unasked.
        try w.ledger.propose(try w.review([one.id], accept: true, by: w.curatorA))
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.contribution) == [one.id])
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).intakes.map(\.record) == [two.id])
        // A claimed size near 2^64 is over quota, not an overflow that stops the sequencer.
        var huge = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.author.publicKey, content: ObjectID(SHA256.hash([9])), contentKind: .blob, size: .max - 1,
            mediaType: "text/plain", license: "CC0-1.0", sidecar: .zero, createdAt: 3).body)
        try huge.sign(with: w.author)
        // The store's queue bound refuses it when proposed; a store whose bound admits it leaves it to the sequencer.
        #expect(throws: LedgerRefusal.queueFull(queued: 0, adding: .max - 1, bound: Ledger.defaultMaxQueuedBytes)) { try w.ledger.propose(huge) }
        try StoreConfig(storeDirectory: w.dir).set("max-queued-bytes", String(UInt64.max))
        let boundless = try Ledger(store: w.ledger.store)
        try boundless.propose(huge)
        let r2 = try boundless.sequence(w.datanet, key: w.sequencer)
        #expect(r2.intakes.isEmpty && r2.refused.map(\.record) == [huge.id] && r2.refused[0].refusal == .overQuota(author: w.author.publicKey.description, count: 1, bytes: 100))
        #expect(try w.ledger.audit(w.datanet).holds)
    }
}
