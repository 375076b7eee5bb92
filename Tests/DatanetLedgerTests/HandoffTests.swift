import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Trust model, item 2: a set-sequencer binds the log it takes over (size and root), and every
/// receipt proves its checkpoint extends the log each handoff took over, so a new key cannot
/// rewrite what came before it.
@Suite struct HandoffTests {
    typealias World = LedgerTests.World

    /// A handoff binds exactly the log before its leaf: one signed before the log grew is
    /// refused by the sequencer (nothing the old key sequenced may be left rewritable); signed
    /// again, it is appended, the audit holds, and receipts made under the new key carry the
    /// consistency proof and verify.
    @Test func boundHandoffIsExactAndProvenByReceipts() throws {
        let w = try World(quorum: 1)
        let next = try SigningKey()
        let st0 = try w.ledger.reader.state(of: w.datanet)
        var stale = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: st0.policyRecord, sequencer: next.publicKey,
                                                                     takesOver: (1, try GovernanceTests.root(w, size: 1))).body)
        try stale.sign(with: w.owner)
        try w.ledger.propose(try w.contribution("one"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)          // leaf 1: size 2
        try w.ledger.propose(stale)                                     // its root at size 1 holds: taken in
        var r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.isEmpty && r.refused.first?.refusal == .handoffNamesAnotherLog(
            "it binds the log at size 1, but 1 leaf/leaves were sequenced since it was signed; propose it again (`datanet policy D set-sequencer KEY`) to bind the log as it is"))
        _ = try w.ledger.proposeSequencer(w.datanet, key: next.publicKey, by: w.owner)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer)          // leaf 2: the handoff, naming size 2
        #expect(r.policies.map(\.index) == [2])
        let after = try w.contribution("after")
        try w.ledger.propose(after)
        _ = try w.ledger.sequence(w.datanet, key: next)                 // leaf 3, under the new key
        #expect(try w.ledger.audit(w.datanet).holds)
        let receipt = try w.ledger.provenance.receipt(for: after.id)
        #expect(receipt.handoffs?.map(\.index) == [2])
        let v = receipt.verify(anchor: w.datanet)
        #expect(v.holds, "\(ReceiptTests.failing(v))")
        let check = try #require(v.checks.first { $0.name == "handoffs keep the history before them" })
        #expect(check.children.map(\.status) == [.pass] && v.takenOnTrust == ["cites the latest policy leaf before it"])
        // The proof is what holds it: altered, left out, or the receipt relabelled v1 (no v1
        // writer made a handoff that binds a log), the check fails.
        var altered = receipt
        altered.handoffs![0].consistency[0] = Data(Digest.zero.bytes).base64EncodedString()
        #expect(ReceiptTests.failing(altered.verify(anchor: w.datanet)) == ["leaf 2: set-sequencer"])
        var stripped = receipt
        stripped.handoffs = nil
        #expect(ReceiptTests.failing(stripped.verify(anchor: w.datanet)) == ["leaf 2: set-sequencer"])
        var relabelled = stripped
        relabelled.type = Receipt.legacyTypeName
        relabelled.reviews = nil
        #expect(ReceiptTests.failing(relabelled.verify(anchor: w.datanet)) == ["leaf 2: set-sequencer"])
        // A replica imports the log and agrees.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true))
        #expect(try peer.ledger.audit(w.datanet).holds)
    }

    /// A handoff naming no log, a root this log does not have, or a size beyond it is refused
    /// when proposed; one the proposing store could not check (it was behind) is refused by the
    /// sequencer and stays out of the log.
    @Test func handoffNamingAnotherLogIsRefused() throws {
        let w = try World(quorum: 1)
        try w.ledger.propose(try w.contribution("one"))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)          // size 2
        let st = try w.ledger.reader.state(of: w.datanet)
        let next = try SigningKey()
        func handoff(_ takesOver: (size: UInt64, root: Digest)?) throws -> Envelope {
            var h = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: st.policyRecord, sequencer: next.publicKey,
                                                                     takesOver: takesOver).body)
            try h.sign(with: w.owner)
            return h
        }
        #expect(throws: LedgerRefusal.handoffNamesAnotherLog("it names no log to take over (size and root); propose it again with this build")) {
            try w.ledger.propose(try handoff(nil))
        }
        #expect(throws: LedgerRefusal.handoffNamesAnotherLog("its root at size 2 is not this log's: it takes over another history")) {
            try w.ledger.propose(try handoff((2, SHA256.hash([1]))))
        }
        #expect(throws: LedgerRefusal.handoffNamesAnotherLog("it takes over at size 0, but the log has 2 leaves")) {
            try w.ledger.propose(try handoff((0, Merkle.emptyRoot)))
        }
        // Size 5 is beyond this store's log: taken in, then refused by the sequencer.
        let ahead = try handoff((5, SHA256.hash([5])))
        try w.ledger.propose(ahead)
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.policies.isEmpty && r.refused.map(\.refusal) == [.handoffNamesAnotherLog("it takes over at size 5, but the log has 2 leaves")])
        #expect(try w.ledger.reader.state(of: w.datanet).policy.sequencer == w.sequencer.publicKey)
    }

    /// A sequencer that appends a handoff naming another log than the one before it (an older
    /// size, or its own size with another root) is caught at that leaf by audit, and a fresh
    /// store refuses the log.
    @Test(arguments: [UInt64(1), 3])
    func forgedHandoffRootIsCaught(_ at: UInt64) throws {
        let w = try World(quorum: 1)
        try w.ledger.propose(all: [try w.contribution("one"), try w.contribution("two")])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)          // leaves 1, 2
        let st = try w.ledger.reader.state(of: w.datanet)
        var h = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: st.policyRecord, sequencer: w.outsider.publicKey,
                                                                 takesOver: (at, SHA256.hash([1]))).body)
        try h.sign(with: w.owner)
        try AuditTests.appendForged(w, .setSequencer(h))                // leaf 3
        let report = try w.ledger.audit(w.datanet)
        #expect(report.violations.map(\.rule) == ["a set-sequencer names the log before it"] && report.violations.first?.index == 3,
                "size \(at): \(report.violations)")
        let peer = try BundleTests.Peer()
        let before = peer.fingerprint
        #expect { try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true)) } throws: { e in
            if case .refused(let why)? = e as? BundleError { why.contains("a set-sequencer names the log before it") } else { false }
        }
        #expect(peer.fingerprint == before)
    }

    /// The attack the binding stops: the new key rewrites a leaf from before the handoff and
    /// signs a checkpoint of that history. Every other check of its receipt holds; the handoff's
    /// consistency proof cannot.
    @Test func newKeyRewritingHistoryBeforeTheHandoffFailsReceipts() throws {
        let w = try World(quorum: 1)
        let one = try w.contribution("one")
        try w.ledger.propose(one)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)          // leaf 1
        let next = try SigningKey()
        _ = try w.ledger.proposeSequencer(w.datanet, key: next.publicKey, by: w.owner)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)          // leaf 2: binds size 2
        let after = try w.contribution("after")
        try w.ledger.propose(after)
        _ = try w.ledger.sequence(w.datanet, key: next)                 // leaf 3
        var forge = try ReceiptTests.Forge(w)
        #expect(try forge.receipt(after.id, key: next).verify(anchor: w.datanet).holds)
        // Leaf 1 replaced by another contribution of the author's.
        let other = try w.contribution("one, rewritten")
        forge.leaves[1] = Leaf(datanet: w.datanet, policy: forge.leaves[1].policy, payload: AuditTests.intake(other, content: "one, rewritten"))
        let v = try forge.receipt(after.id, key: next).verify(anchor: w.datanet)
        #expect(ReceiptTests.failing(v) == ["leaf 2: set-sequencer"], "\(ReceiptTests.failing(v))")
    }

    /// The binding's fields come together: a size without a root is refused by the decoder,
    /// and both round-trip.
    @Test func bindingFieldsComeTogether() throws {
        let d = DatanetID(SHA256.hash([1])), key = try SigningKey().publicKey
        let bound = SetSequencer(datanet: d, previous: RecordID(SHA256.hash([2])), sequencer: key, takesOver: (9, SHA256.hash([9])))
        let back = try SetSequencer(body: bound.body)
        #expect(back == bound && back.takesOver?.size == 9)
        var b = BodyBuilder()
        b.set(0, .bytes(d.bytes)); b.set(1, .bytes(SHA256.hash([2]).bytes)); b.set(2, .bytes(key.bytes)); b.set(3, .unsigned(9))
        #expect(throws: RecordError.malformed("set-sequencer lacks field 4 (root taken over)")) { try SetSequencer(body: b.encoded) }
    }

    /// Receipts written before handoffs carried proofs (v1), and handoffs that bind no log,
    /// verify with that check named as taken on trust, never as passed.
    @Test func legacyHandoffsAreNamedAsTakenOnTrust() throws {
        let w = try World(quorum: 1)
        let next = try SigningKey()
        let st = try w.ledger.reader.state(of: w.datanet)
        var h = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: st.policyRecord, sequencer: next.publicKey,
                                                                 takesOver: nil).body)
        try h.sign(with: w.owner)
        try AuditTests.appendForged(w, .setSequencer(h))               // leaf 1, as an older build wrote it
        let c = try w.contribution("later")
        var forge = try ReceiptTests.Forge(w)
        forge.append(AuditTests.intake(c, content: "later"))
        let v = try forge.receipt(c.id, key: next).verify(anchor: w.datanet)
        #expect(v.holds && v.takenOnTrust.contains("leaf 1: set-sequencer"), "\(v.takenOnTrust)")
        #expect(try w.ledger.audit(w.datanet).holds)
    }
}
