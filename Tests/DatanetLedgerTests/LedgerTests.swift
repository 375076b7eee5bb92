import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Glibc
import Testing

/// A Datanet's life through the ledger API: genesis, proposals, intake with promises, exact
/// duplicates, curation by quorum, policy changes, checkpoints — and the refusals.
@Suite struct LedgerTests {
    final class World {
        let dir: String
        let ledger: Ledger
        let owner, sequencer, curatorA, curatorB, author, outsider: SigningKey
        var datanet = DatanetID(.zero)

        init(quorum: UInt64 = 2, contributors: Bool = false, maxPending: UInt64 = 100, maxPendingBytes: UInt64 = 1 << 30) throws {
            dir = NSTemporaryDirectory() + "datanet-ledger-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
            (owner, sequencer, curatorA, curatorB, author, outsider) = (try SigningKey(), try SigningKey(), try SigningKey(),
                                                                        try SigningKey(), try SigningKey(), try SigningKey())
            let policy = PolicyState(name: "birds", owner: owner.publicKey, sequencer: sequencer.publicKey,
                                     curators: [curatorA.publicKey, curatorB.publicKey], quorum: quorum,
                                     contributors: contributors ? [author.publicKey] : nil, readers: nil, maxPendingProposals: maxPending,
                                     maxPendingBytes: maxPendingBytes)
            var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 1, nonce: [UInt8](repeating: 1, count: 16)).body)
            try g.sign(with: owner)
            datanet = try ledger.create(genesis: g, sequencerKey: sequencer)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func contribution(_ content: String, by key: SigningKey? = nil) throws -> Envelope {
            let k = key ?? author
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: datanet, author: k.publicKey, content: ObjectID(SHA256.hash(Array(content.utf8))), contentKind: .blob,
                size: 100, mediaType: "text/plain", license: "CC0-1.0", sidecar: .zero, createdAt: 2).body)
            try e.sign(with: k)
            return e
        }

        /// Ingests `bytes` as a file into the World's store (or `ledger`'s) and signs a
        /// contribution naming the blob (not proposed).
        func stored(_ bytes: [UInt8], by key: SigningKey? = nil, ledger: Ledger? = nil, mediaType: String = "text/plain",
                    sidecar: Digest = .zero, createdAt: UInt64 = 2) throws -> Envelope {
            let k = key ?? author
            let path = dir + "-file-\(UInt32.random(in: 0...UInt32.max))"
            defer { unlink(path) }
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let blob = try Ingest(store: (ledger ?? self.ledger).store).add(paths: [path])[0]
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: datanet, author: k.publicKey, content: blob.id, contentKind: .blob, size: blob.size,
                mediaType: mediaType, license: "CC0-1.0", sidecar: sidecar, createdAt: createdAt).body)
            try e.sign(with: k)
            return e
        }

        /// A policy record on top of the policy in force, changed by `edit`, signed by `signers`.
        func policyChange(_ summary: String, signedBy signers: [SigningKey], _ edit: (inout PolicyState) -> Void) throws -> Envelope {
            let st = try ledger.reader.state(of: datanet)
            var next = st.policy
            edit(&next)
            var e = Envelope(kind: .policy, body: PolicyChange(datanet: datanet, previous: st.policyRecord, state: next, summary: summary).body)
            for s in signers { try e.sign(with: s) }
            return e
        }

        func review(_ ids: [RecordID], accept: Bool, by key: SigningKey, createdAt: UInt64? = nil) throws -> Envelope {
            var e = Envelope(kind: .review, body: Review(datanet: datanet, reviewer: key.publicKey, contributions: ids, accept: accept, reason: "",
                                                         createdAt: createdAt).body)
            try e.sign(with: key)
            return e
        }
    }

    @Test func contributeReviewSequenceAndProve() throws {
        let w = try World()
        let a = try w.contribution("song A"), b = try w.contribution("song B"), dup = try w.contribution("song A", by: w.curatorA)
        for e in [a, b, dup] { try w.ledger.propose(e) }
        #expect(throws: LedgerRefusal.alreadyTaken(record: a.id.hex, pending: true)) { try w.ledger.propose(a) } // a replay
        let first = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(first.intakes.map(\.index) == [1, 2, 3])
        #expect(first.intakes.allSatisfy { $0.promise.isValid })
        // The copy of A is rejected at once, naming the earlier contribution.
        #expect(first.decisions.count == 1)
        #expect(first.decisions[0].contribution == dup.id && !first.decisions[0].accepted)
        #expect(first.decisions[0].reason == "duplicate of \(a.id.hex)")
        #expect(first.size == 5)
        #expect(throws: LedgerRefusal.alreadyTaken(record: a.id.hex, pending: false)) { try w.ledger.propose(a) } // now in the log

        // Quorum 2: one accept leaves A undecided; the second decides it. B gets one reject,
        // which (2 curators, quorum 2) makes acceptance impossible.
        try w.ledger.propose(try w.review([a.id], accept: true, by: w.curatorA))
        try w.ledger.propose(try w.review([b.id], accept: false, by: w.curatorB))
        let second = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(second.decisions.map(\.contribution) == [b.id])
        #expect(second.decisions.first?.accepted == false)
        try w.ledger.propose(try w.review([a.id], accept: true, by: w.curatorB))
        let third = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(third.decisions.map(\.contribution) == [a.id] && third.decisions[0].accepted)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)

        // The checkpoint verifies under the sequencer key, covers every leaf, and no other key.
        let note = try #require(try w.ledger.reader.latestCheckpoint(w.datanet))
        let cp = try Checkpoint.verify(note: note, key: w.sequencer.publicKey)
        let leaves = try w.ledger.reader.leaves(w.datanet)
        #expect(cp.size == UInt64(leaves.count))
        #expect(cp.root == Merkle.root(leafHashes: leaves.map(\.leaf.hash)))
        #expect(throws: Checkpoint.Failure.noSignatureByKey) { try Checkpoint.verify(note: note, key: w.owner.publicKey) }
        // C2SP signed-note: lines under other names or key ids are skipped whatever their length
        // (a 76-byte cosignature); the sequencer's own line must be 68 bytes and verify; every
        // line carries more than a key id.
        func line(_ name: String, _ blob: [UInt8]) -> String { "\u{2014} \(name) \(Data(blob).base64EncodedString())\n" }
        let cosignature = [UInt8](repeating: 9, count: 76)
        #expect(try Checkpoint.verify(note: note + line("witness.example/w1", cosignature), key: w.sequencer.publicKey) == cp)
        let ownID = Checkpoint.keyID(name: cp.origin, key: w.sequencer.publicKey)
        let idBytes = withUnsafeBytes(of: ownID.bigEndian) { Array($0) }
        #expect(try Checkpoint.verify(note: note + line(cp.origin, idBytes.map { $0 ^ 1 } + cosignature), key: w.sequencer.publicKey) == cp)
        #expect(throws: Checkpoint.Failure.badSignature) {
            try Checkpoint.verify(note: note + line(cp.origin, idBytes + cosignature), key: w.sequencer.publicKey)
        }
        #expect(throws: Checkpoint.Failure.malformed("a signature line is not \"— name base64\"")) {
            try Checkpoint.verify(note: note + line("witness.example/w1", [1, 2, 3, 4]), key: w.sequencer.publicKey)
        }
        #expect(leaves.dropFirst().allSatisfy { $0.leaf.policy?.index == 0 })
        #expect(try w.ledger.reader.decision(a.id) != nil)
    }

    /// A long run commits every few leaves, each commit with the signed checkpoint of its size;
    /// the result is the one a single transaction would give.
    @Test func sequencingCommitsInBoundedTransactions() throws {
        let w = try World()
        let items = try (0..<7).map { try w.contribution("item \($0)") }
        try w.ledger.propose(all: items + [try w.contribution("item 3", by: w.curatorA)])
        let intake = try w.ledger.sequence(w.datanet, key: w.sequencer, leavesPerTransaction: 2)
        #expect(intake.intakes.map(\.index) == Array(1...8))
        #expect(intake.decisions.count == 1 && intake.decisions[0].index == 9) // the duplicate, at once
        #expect(try w.ledger.reader.checkpoints(w.datanet).map(\.size) == [1, 3, 5, 7, 10])
        // Reviews in reverse order still decide in intake order, at most three leaves per
        // transaction: a decision and the review leaves it is the first to cite together.
        for item in items.reversed() { try w.ledger.propose(try w.review([item.id], accept: true, by: w.curatorA)) }
        let batch = try w.review(items.map(\.id).sorted(), accept: true, by: w.curatorB)
        try w.ledger.propose(batch)
        let decided = try w.ledger.sequence(w.datanet, key: w.sequencer, leavesPerTransaction: 3)
        #expect(decided.decisions.map(\.contribution) == items.map(\.id))
        // Leaf 10: A's review of item 0, 11: B's batch review, 12: item 0's decision; then A's
        // review of each item and its decision.
        #expect(decided.decisions.map(\.index) == [12, 14, 16, 18, 20, 22, 24])
        #expect(try w.ledger.reader.checkpoints(w.datanet).map(\.size) == [1, 3, 5, 7, 10, 13, 15, 17, 19, 21, 23, 25])
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
        // Every checkpoint verifies and is the root of the log's prefix of its size.
        let hashes = try w.ledger.reader.leaves(w.datanet).map(\.leaf.hash)
        for (size, note) in try w.ledger.reader.checkpoints(w.datanet) {
            let cp = try Checkpoint.verify(note: note, key: w.sequencer.publicKey)
            #expect(cp.size == size && cp.root == Merkle.root(leafHashes: Array(hashes[0..<Int(size)])))
        }
        // The decision leaves hold the reviews that decided them, and nothing is left undecided.
        for (i, item) in items.enumerated() {
            #expect(try w.ledger.reader.decision(item.id) == UInt64(12 + 2 * i))
            // Each cites B's batch review, sequenced once, and A's review of it.
            let decision = try #require(try w.ledger.reader.leaves(w.datanet, from: UInt64(12 + 2 * i)).first?.leaf.decision)
            let reviews = try w.ledger.reader.reviews(of: decision, in: w.datanet)
            #expect(reviews.count == 2 && reviews.contains(batch) && decision.reviews.count == 2)
            guard case .cited(let cited) = decision.reviews else { Issue.record("reviews are not cited"); continue }
            #expect(cited.allSatisfy { $0 <= 11 } || (i > 0 && cited.last == UInt64(11 + 2 * i)))
        }
        #expect(try w.ledger.audit(w.datanet).holds)
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.isEmpty)
    }

    /// The sequencer's direct decision- and review-leaf encoders write exactly the generic
    /// encoder's bytes, across argument sizes that change CBOR head lengths.
    @Test func directLeafEncodingsMatchTheGenericEncoder() throws {
        for (index, intake, reasonLength, cited) in [(UInt64(0), UInt64(0), 0, [UInt64]()), (23, 24, 23, [1]), (255, 256, 24, [23, 24, 255]),
                                                     (65_535, 65_536, 300, [256, 70_000, 1 << 32]), (.max, 1 << 33, 5, [0, .max])] {
            let reason = String(repeating: "r", count: reasonLength)
            let (d, cite) = (DatanetID(SHA256.hash([1])), (index, SHA256.hash([2])))
            for accepted in [false, true] {
                let generic = Leaf(datanet: d, policy: cite, payload: .decision(.init(
                    contribution: RecordID(SHA256.hash([3])), intake: intake, accepted: accepted, reason: reason, reviews: .cited(cited)))).encoded
                let direct = Leaf.decisionEncoding(datanet: d, policy: cite, contribution: RecordID(SHA256.hash([3])),
                                                   intake: intake, accepted: accepted, reason: reason, reviews: cited)
                #expect(direct == generic, "index \(index), intake \(intake), reason \(reasonLength), reviews \(cited)")
                #expect(try Leaf(encoded: direct).decision?.reviews == .cited(cited))
            }
            for size in [0, 23, 24, 255, 256, 70_000] {
                let review = Envelope(kind: .review, body: CBOR.map([.init(.unsigned(0), .bytes([UInt8](repeating: 0xab, count: size)))]).encoded)
                let generic = Leaf(datanet: d, policy: cite, payload: .review(review)).encoded
                #expect(Leaf.reviewEncoding(datanet: d, policy: cite, review: review.encoded) == generic, "review body of \(size) bytes")
                #expect(try Leaf(encoded: generic).review == review)
            }
        }
    }

    @Test func refusals() throws {
        let w = try World(quorum: 1, contributors: true, maxPending: 1)
        // A review by someone who is not a curator, and a contribution by a non-contributor.
        let name = try w.ledger.reader.state(of: w.datanet).policy.name
        #expect(throws: LedgerRefusal.notACurator(reviewer: w.outsider.publicKey.description, datanet: name)) {
            try w.ledger.propose(try w.review([RecordID(.zero)], accept: true, by: w.outsider))
        }
        #expect(throws: LedgerRefusal.notAContributor(author: w.outsider.publicKey.description, datanet: name)) {
            try w.ledger.propose(try w.contribution("x", by: w.outsider))
        }
        // Forged: signed by the author, claiming another author.
        var forged = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.outsider.publicKey, content: ObjectID(.zero), contentKind: .blob, size: 1, mediaType: "",
            license: "", sidecar: .zero, createdAt: 0).body)
        try forged.sign(with: w.author)
        #expect(throws: RecordError.missingSignature("contribution must be signed by \(w.outsider.publicKey)")) { try w.ledger.propose(forged) }
        // A record for another Datanet.
        let other = try World()
        #expect(throws: LedgerStateError.unknownDatanet(other.datanet.hex)) { try w.ledger.propose(try other.contribution("elsewhere")) }
        // Nothing refused so far reached the log.
        #expect(try w.ledger.reader.state(of: w.datanet).size == 1)
        // Quota of one undecided proposal per author: the second waits in pending (deferred).
        try w.ledger.propose(try w.contribution("one"))
        let two = try w.contribution("two")
        try w.ledger.propose(two)
        let report = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(report.intakes.count == 1)
        #expect(report.size == 2)
        #expect(try w.ledger.reader.leaves(w.datanet).count == 2)
        #expect(report.refused.isEmpty && report.deferred.map(\.record) == [two.id] && report.deferred[0].count == 1)
        // A second sequencer process is kept out by the lock file.
        let lock = open(Ledger.sequencerLockPath(store: w.dir, datanet: w.datanet), O_RDWR | O_CREAT, 0o600)
        #expect(flock(lock, LOCK_EX | LOCK_NB) == 0)
        #expect(throws: LedgerStateError.sequencerBusy(path: Ledger.sequencerLockPath(store: w.dir, datanet: w.datanet),
                                                    why: "another process is sequencing this Datanet")) { try w.ledger.sequence(w.datanet, key: w.sequencer) }
        close(lock)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // Only the sequencer key in force may sequence.
        #expect(throws: LedgerRefusal.notSequencer(key: w.owner.publicKey.description, sequencer: w.sequencer.publicKey.description)) {
            try w.ledger.sequence(w.datanet, key: w.owner)
        }
    }

    @Test func policyChangesNeedTheOwnerOrAQuorumAndTheLatestPolicy() throws {
        let w = try World(quorum: 2)
        let st = try w.ledger.reader.state(of: w.datanet)
        var removed = st.policy
        removed.curators = [w.curatorA.publicKey]
        removed.quorum = 1
        func change(_ previous: RecordID, _ signers: [SigningKey]) throws -> Envelope {
            var e = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: previous, state: removed, summary: "remove B").body)
            for s in signers { try e.sign(with: s) }
            return e
        }
        // One curator of a quorum of two: refused at sequencing.
        try w.ledger.propose(try change(st.policyRecord, [w.curatorA]))
        var r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.isEmpty && r.refused.first?.refusal == .quorumNotMet(curators: 1, quorum: 2))
        // Both curators: applied.
        let byQuorum = try change(st.policyRecord, [w.curatorA, w.curatorB])
        try w.ledger.propose(byQuorum)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.count == 1)
        let now = try w.ledger.reader.state(of: w.datanet)
        #expect(now.policy.curators == [w.curatorA.publicKey] && now.policyRecord == byQuorum.id)
        // A change built on the old policy is stale.
        var again = removed
        again.name = "birds 2"
        var stale = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: st.policyRecord, state: again, summary: "rename").body)
        try stale.sign(with: w.owner)
        try w.ledger.propose(stale)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.refused.first?.refusal == .stalePolicy(names: st.policyRecord.hex, inForce: byQuorum.id.hex))
        // Reviews by the removed curator no longer count; its proposals are refused.
        #expect(throws: LedgerRefusal.notACurator(reviewer: w.curatorB.publicKey.description, datanet: removed.name)) {
            try w.ledger.propose(try w.review([RecordID(.zero)], accept: true, by: w.curatorB))
        }
        // Later leaves cite the new policy leaf.
        try w.ledger.propose(try w.contribution("after"))
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let last = try #require(try w.ledger.reader.leaves(w.datanet).last)
        #expect(last.leaf.policy?.index == now.policyIndex)
    }

    @Test func aCuratorsLatestReviewCounts() throws {
        let w = try World(quorum: 1)
        let a = try w.contribution("song")
        try w.ledger.propose(a)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // Not in one batch: reject then accept (created later) by the same curator → its accept counts.
        var rejectThenAccept = try w.review([a.id], accept: false, by: w.curatorA, createdAt: 10)
        try w.ledger.propose(rejectThenAccept)
        rejectThenAccept = try w.review([a.id], accept: true, by: w.curatorA, createdAt: 11)
        // Same reviewer, different body (verdict) → a different record: allowed, and latest.
        try w.ledger.propose(rejectThenAccept)
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.first?.accepted == true)
    }

    /// A restored copy must not sequence past a checkpoint its own key already signed, and two
    /// histories signed by one key are kept as fork evidence.
    @Test func forksAndRestoredBackups() throws {
        let w = try World(quorum: 1)
        try w.ledger.propose(try w.contribution("first"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // A backup of the store at size 2.
        let copy = w.dir + "-copy", copy2 = w.dir + "-copy2"
        try FileManager.default.copyItem(atPath: w.dir, toPath: copy)
        try FileManager.default.copyItem(atPath: w.dir, toPath: copy2)
        defer { try? FileManager.default.removeItem(atPath: copy); try? FileManager.default.removeItem(atPath: copy2) }
        try w.ledger.propose(try w.contribution("second"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let noteA = try #require(try w.ledger.reader.latestCheckpoint(w.datanet))
        let restored = try Ledger(store: try ObjectStore(directory: copy))
        #expect(try restored.observe(note: noteA, datanet: w.datanet) == .consistent(size: 3))
        #expect(throws: LedgerStateError.storeBehind(signed: 3, held: 2)) { try restored.sequence(w.datanet, key: w.sequencer) }

        // A second copy of the same backup that (wrongly) sequences another record at the
        // same size, never having seen the newer checkpoint: a fork.
        let forked = try Ledger(store: try ObjectStore(directory: copy2))
        let other = try forked.propose(try w.contribution("other"))
        _ = try forked.sequence(w.datanet, key: w.sequencer)
        let noteB = try #require(try forked.reader.latestCheckpoint(w.datanet))
        // Verifying a receipt from the fork fails here and keeps the two notes as evidence.
        #expect(try w.ledger.reader.forkEvidence(w.datanet).isEmpty)
        #expect(try !w.ledger.provenance.verify(try forked.provenance.receipt(for: other), anchor: w.datanet).holds)
        #expect(try w.ledger.reader.forkEvidence(w.datanet).map(\.notes.count) == [2])
        guard case .fork(let evidence) = try w.ledger.observe(note: noteB, datanet: w.datanet) else {
            Issue.record("fork not detected"); return
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(evidence.utf8)) as? [String: Any])
        #expect(json["type"] as? String == "datanet/fork-evidence/v1")
        let notes = try #require(json["notes"] as? [String])
        #expect(notes.count == 2)
        // Both notes verify under the sequencer key, same size, different roots: portable proof.
        let a = try Checkpoint.verify(note: notes[0], key: w.sequencer.publicKey)
        let b = try Checkpoint.verify(note: notes[1], key: w.sequencer.publicKey)
        #expect(a.size == b.size && a.root != b.root)
        // A checkpoint signed by a key not in force is refused.
        let bogus = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 1, root: .zero).signed(by: w.owner)
        #expect { try w.ledger.observe(note: bogus, datanet: w.datanet) } throws: { e in
            guard case .checkpointRefused(let why)? = e as? LedgerRefusal else { return false }
            return why.contains("signature")
        }
    }

    /// The owner replaces a lost sequencer key: the continuation must name the log's last
    /// state; its checkpoint and all later ones are signed by the new key.
    @Test func continuationAfterALostKey() throws {
        let w = try World(quorum: 1)
        try w.ledger.propose(try w.contribution("before"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let st = try w.ledger.reader.state(of: w.datanet)
        let root = try Checkpoint.verify(note: try #require(try w.ledger.reader.latestCheckpoint(w.datanet)), key: w.sequencer.publicKey).root
        let newKey = try SigningKey()
        func continuation(size: UInt64, root: Digest, signer: SigningKey) throws -> Envelope {
            var e = Envelope(kind: .continuation, body: Continuation(datanet: w.datanet, size: size, root: root, sequencer: newKey.publicKey).body)
            try e.sign(with: signer)
            return e
        }
        #expect(throws: LedgerRefusal.unauthorized(kind: "continuation", needs: "the owner's signature")) {
            try w.ledger.applyContinuation(try continuation(size: st.size, root: root, signer: w.curatorA), key: newKey)
        }
        #expect(throws: LedgerStateError.notLastState(size: st.size - 1, held: st.size)) {
            try w.ledger.applyContinuation(try continuation(size: st.size - 1, root: root, signer: w.owner), key: newKey)
        }
        #expect(throws: LedgerStateError.notLastState(size: st.size, held: st.size)) {
            try w.ledger.applyContinuation(try continuation(size: st.size, root: .zero, signer: w.owner), key: newKey)
        }
        #expect(throws: LedgerRefusal.notSequencer(key: w.sequencer.publicKey.description, sequencer: newKey.publicKey.description)) {
            try w.ledger.applyContinuation(try continuation(size: st.size, root: root, signer: w.owner), key: w.sequencer)
        }
        let note = try w.ledger.applyContinuation(try continuation(size: st.size, root: root, signer: w.owner), key: newKey)
        #expect(try Checkpoint.verify(note: note, key: newKey.publicKey).size == st.size + 1)
        #expect(throws: LedgerRefusal.notSequencer(key: w.sequencer.publicKey.description, sequencer: newKey.publicKey.description)) {
            try w.ledger.sequence(w.datanet, key: w.sequencer)
        }
        try w.ledger.propose(try w.contribution("after"))
        #expect(try w.ledger.sequence(w.datanet, key: newKey).intakes.count == 1)
    }
}
