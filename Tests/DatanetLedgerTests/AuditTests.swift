import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// `audit` replays logs: an honest one holds; logs a misbehaving sequencer would write (with
/// the ledger's own append and signing, bypassing the sequencing rules) are caught at the leaf.
@Suite struct AuditTests {
    typealias World = LedgerTests.World

    /// Appends a leaf to the store's log and signs the new checkpoint, as a sequencer that
    /// ignores the rules would.
    static func appendForged(_ w: World, _ payload: Leaf.Payload, cite: UInt64? = nil) throws {
        let log = try w.ledger.merkleLog(w.datanet)
        let table = try w.ledger.leafTable(w.datanet)
        try w.ledger.env.write { txn in
            var st = try w.ledger.state(txn, w.datanet)
            let citeHash = try cite.map { i in Merkle.leafHash(try #require(try table.get(txn, i))) }
            let leaf = Leaf(datanet: w.datanet, policy: (cite ?? st.policyIndex, citeHash ?? st.policyLeafHash), payload: payload)
            let hash = try w.ledger.appendLeaf(txn, leaf, at: st.size, table: table, log: log)
            if payload.kind == .policy { st.policyIndex = st.size; st.policyLeafHash = hash }
            st.size += 1
            try w.ledger.sign(txn, &st, log: log, key: w.sequencer)
        }
    }

    static func intake(_ c: Envelope, content: String) -> Leaf.Payload {
        .intake(.init(author: c.signatures[0].key, record: c.id, content: ObjectID(SHA256.hash(Array(content.utf8))), contribution: c))
    }

    static func decision(_ c: Envelope, intake: UInt64, accept: Bool, _ reviews: [Envelope]) -> Leaf.Payload {
        .decision(.init(contribution: c.id, intake: intake, accepted: accept, reason: "forged", reviews: .embedded(reviews.sorted { $0.id < $1.id })))
    }

    @Test func honestLogHolds() throws {
        let w = try World()
        let a = try w.contribution("song A"), b = try w.contribution("song B"), copy = try w.contribution("song A", by: w.curatorA)
        try w.ledger.propose(all: [a, b, copy])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(all: [try w.review([a.id, b.id], accept: true, by: w.curatorA), try w.review([a.id], accept: true, by: w.curatorB),
                                   try w.review([b.id], accept: false, by: w.curatorB)])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        var st = try w.ledger.reader.state(of: w.datanet).policy
        st.quorum = 1
        var p = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: st, summary: "quorum 1").body)
        try p.sign(with: w.owner)
        try w.ledger.propose(p)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let report = try w.ledger.audit(w.datanet)
        #expect(report.holds, "\(report.violations)")
        // Genesis, three intakes, the copy's rejection, three review leaves (each review once,
        // B's accept and A's batch for a, B's reject for b), two decisions, the policy.
        #expect(report.leaves == 11 && report.checkpoints == 4)
        #expect(report.signatures == 1 + 3 + 3 + 1)
    }

    @Test(arguments: [
        ("decision citing a stale policy", "a leaf cites the latest policy leaf before it", UInt64(3)),
        ("review by a removed curator counted", "only curators in force are counted", 3),
        ("duplicate accepted", "an exact duplicate is rejected", 4),
        ("too few reviews", "the counted reviews reach the quorum rule", 2),
        ("author not allowed", "the author may contribute under the policy in force", 2),
        ("policy without quorum", "a policy change has the owner's signature or a curator quorum", 1),
        ("record taken in twice", "a record is taken in once", 2),
        // A handoff record in a policy leaf (and the reverse) once trapped the replay.
        ("set-sequencer record in a policy leaf", "a policy leaf carries a policy record", 1),
        ("policy record in a set-sequencer leaf", "a set-sequencer leaf carries a set-sequencer record", 1),
    ])
    func misbehavingSequencerIsCaught(_ misdeed: String, _ rule: String, _ index: UInt64) throws {
        let w = try World()
        let a = try w.contribution("song A"), copy = try w.contribution("song A", by: w.curatorA)
        let ra = try w.review([a.id], accept: true, by: w.curatorA), rb = try w.review([a.id], accept: true, by: w.curatorB)
        var dropped = try w.ledger.reader.state(of: w.datanet).policy
        dropped.curators = [w.curatorA.publicKey]; dropped.quorum = 1; dropped.contributors = [w.curatorA.publicKey]
        var drop = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: dropped, summary: "drop").body)
        switch misdeed {
        case "decision citing a stale policy":
            try drop.sign(with: w.owner)
            try Self.appendForged(w, Self.intake(a, content: "song A"))
            try Self.appendForged(w, .policy(drop))
            try Self.appendForged(w, Self.decision(a, intake: 1, accept: true, [ra, rb]), cite: 0)
        case "review by a removed curator counted":
            try drop.sign(with: w.owner)
            try Self.appendForged(w, Self.intake(a, content: "song A"))
            try Self.appendForged(w, .policy(drop))
            try Self.appendForged(w, Self.decision(a, intake: 1, accept: true, [rb]))
        case "duplicate accepted":
            let rc = try w.review([copy.id], accept: true, by: w.curatorA), rd = try w.review([copy.id], accept: true, by: w.curatorB)
            try Self.appendForged(w, Self.intake(a, content: "song A"))
            try Self.appendForged(w, Self.intake(copy, content: "song A"))
            try Self.appendForged(w, Self.decision(a, intake: 1, accept: true, [ra, rb]))
            try Self.appendForged(w, Self.decision(copy, intake: 2, accept: true, [rc, rd]))
        case "too few reviews":
            try Self.appendForged(w, Self.intake(a, content: "song A"))
            try Self.appendForged(w, Self.decision(a, intake: 1, accept: true, [ra]))
        case "author not allowed":
            try drop.sign(with: w.owner)
            try Self.appendForged(w, .policy(drop))
            try Self.appendForged(w, Self.intake(a, content: "song A"))
        case "policy without quorum":
            try drop.sign(with: w.curatorB) // one of two curators, quorum 2, not the owner
            try Self.appendForged(w, .policy(drop))
        case "record taken in twice":
            try Self.appendForged(w, Self.intake(a, content: "song A"))
            try Self.appendForged(w, Self.intake(a, content: "song A"))
        case "set-sequencer record in a policy leaf":
            var h = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: w.datanet.genesis, sequencer: w.outsider.publicKey, takesOver: nil).body)
            try h.sign(with: w.owner)
            try Self.appendForged(w, .policy(h))
        case "policy record in a set-sequencer leaf":
            try drop.sign(with: w.owner)
            try Self.appendForged(w, .setSequencer(drop))
        default: Issue.record("unknown misdeed")
        }
        let report = try w.ledger.audit(w.datanet)
        let hit = report.violations.first { $0.rule == rule }
        #expect(hit?.index == index, "\(misdeed): \(report.violations)")
        // The same log in a bundle is refused by a fresh store, which stays as it was.
        let peer = try BundleTests.Peer()
        let before = peer.fingerprint
        #expect { try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true)) } throws: { e in
            if case .refused(let why)? = e as? BundleError { why.contains(rule) } else { false }
        }
        #expect(peer.fingerprint == before)
        // The evidence stands on its own: the leaf is in the tree the sequencer signed.
        let evidence = try #require(hit?.evidence)
        let cp = try Checkpoint.verify(note: evidence.checkpoint, key: w.sequencer.publicKey)
        let leaf = try #require(evidence.leaf.flatMap { Data(base64Encoded: $0) })
        let proof = try #require(evidence.proof).map { Digest(bytes: Array(Data(base64Encoded: $0)!))! }
        try Merkle.verifyInclusion(index: index, size: cp.size, leafHash: Merkle.leafHash(Array(leaf)), proof: proof, root: cp.root)
    }

    @Test func checkpointThatRewritesHistoryIsCaught() throws {
        let w = try World()
        try w.ledger.propose(try w.contribution("song A"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try w.ledger.audit(w.datanet).holds)
        // The sequencer signs another history of the same size, and someone shows it to us.
        let other = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([9])).signed(by: w.sequencer)
        try w.ledger.env.write { txn in try txn.put(w.ledger.observed, BigEndian.key(w.datanet, 2), Array(other.utf8)) }
        let report = try w.ledger.audit(w.datanet)
        #expect(report.violations.map(\.rule) == ["a signed checkpoint matches the log"])
        #expect(report.violations.first?.evidence?.checkpoint == other)
        // A note under a key not in force is refused as such.
        let stranger = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([9])).signed(by: w.outsider)
        try w.ledger.env.write { txn in try txn.put(w.ledger.observed, BigEndian.key(w.datanet, 2), Array(stranger.utf8)) }
        #expect(try w.ledger.audit(w.datanet).violations.map(\.rule) == ["a checkpoint is signed by the sequencer key in force"])
    }

    /// Fork evidence held (received in a bundle or by sync) fails an audit whose replay holds,
    /// and a strict receipt check that leans on audit says so instead of trapping.
    @Test func forkEvidenceHeldFailsAnAuditThatOtherwiseHolds() throws {
        let w = try World()
        let a = try w.contribution("song A")
        try w.ledger.propose(a)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let ours = try #require(try w.ledger.reader.latestCheckpoint(w.datanet))
        let other = try Checkpoint(origin: Checkpoint.origin(of: w.datanet), size: 2, root: SHA256.hash([9])).signed(by: w.sequencer)
        let evidence = try JSONEncoder.canonical.encode(ForkEvidence(datanet: w.datanet.hex, notes: [ours, other]))
        try w.ledger.env.write { txn in try txn.put(w.ledger.forks, BigEndian.key(w.datanet, 2), Array(evidence)) }
        let report = try w.ledger.audit(w.datanet)
        #expect(report.violations.isEmpty && report.forks.count == 1 && !report.holds)
        let strict = try w.ledger.provenance.verify(try w.ledger.provenance.receipt(for: a.id), anchor: w.datanet, strict: true)
        #expect(!strict.holds && strict.checks.contains { $0.detail.contains("fork(s) of the log") })
    }

    @Test func tamperedLeafBytesAreCaught() throws {
        let w = try World()
        try w.ledger.propose(try w.contribution("song A"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // Flip a byte of the intake leaf in place (a disk error or an edited copy of the store).
        let table = try w.ledger.leafTable(w.datanet)
        try w.ledger.env.write { txn in
            var bytes = try #require(try table.get(txn, 1))
            bytes[bytes.count - 5] ^= 0x40
            try txn.put(table.table, BigEndian.key(w.datanet, 1), bytes)
        }
        let rules = try w.ledger.audit(w.datanet).violations.map(\.rule)
        #expect(rules.contains("every record is validly signed"))
        #expect(rules.contains("a signed checkpoint matches the log"))
    }
}
