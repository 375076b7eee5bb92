import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Receipts: an honest one verifies; every check turns ✗ when the one value it guards is
/// altered, whether by someone holding no key (editing the file) or by the sequencer itself
/// (writing a log that breaks the rules and signing it).
@Suite struct ReceiptTests {
    typealias World = LedgerTests.World

    /// A log held as leaves in memory, so tests can write what a misbehaving sequencer would
    /// and make receipts of it signed by any key.
    struct Forge {
        var leaves: [Leaf]
        let datanet: DatanetID

        init(_ w: World) throws {
            datanet = w.datanet
            leaves = try w.ledger.reader.leaves(w.datanet).map(\.leaf)
        }

        func entry(_ i: Int, size: Int) throws -> Receipt.Entry {
            let hashes = leaves.prefix(size).map(\.hash)
            return Receipt.Entry(index: UInt64(i), leaf: Data(leaves[i].encoded).base64EncodedString(),
                                 proof: Merkle.inclusionProof(index: i, leafHashes: hashes).map { Data($0.bytes).base64EncodedString() },
                                 view: try RecordView.leaf(leaves[i]))
        }

        /// A receipt at `size` (default: every leaf), signed by `key`, with the chain found by
        /// leaf kind unless given.
        func receipt(_ contribution: RecordID, key: SigningKey, size: Int? = nil, chain: [Int]? = nil) throws -> Receipt {
            let n = size ?? leaves.count
            let chainIdx = chain ?? leaves.prefix(n).indices.filter { [.policy, .setSequencer, .continuation].contains(leaves[$0].kind) }
            let intake = leaves.prefix(n).firstIndex { $0.intake?.record == contribution }!
            let decision = leaves.prefix(n).firstIndex { $0.decision?.contribution == contribution }
            var cited = [UInt64]()
            if let decision, case .cited(let indexes)? = leaves[decision].decision?.reviews { cited = indexes }
            let note = try Checkpoint(origin: Checkpoint.origin(of: datanet), size: UInt64(n),
                                      root: Merkle.root(leafHashes: leaves.prefix(n).map(\.hash))).signed(by: key)
            // Consistency from each handoff's named log to this tree (what an honest node gives).
            let handoffs = chainIdx.compactMap { i -> Receipt.Handoff? in
                guard let e = leaves[i].governing, let from = try? Record(e).takesOver, from.size < n else { return nil }
                let proof = Merkle.consistencyProof(size1: Int(from.size), leafHashes: leaves.prefix(n).map(\.hash))
                return Receipt.Handoff(index: UInt64(i), consistency: proof.map { Data($0.bytes).base64EncodedString() })
            }
            return Receipt(datanet: datanet.hex, contribution: contribution.hex, checkpoint: note,
                           chain: try chainIdx.map { try entry($0, size: n) },
                           last: chainIdx.last == n - 1 ? nil : try entry(n - 1, size: n),
                           intake: try entry(intake, size: n), decision: try decision.map { try entry($0, size: n) },
                           reviews: cited.isEmpty ? nil : try cited.map { try entry(Int($0), size: n) },
                           handoffs: handoffs.isEmpty ? nil : handoffs)
        }

        /// Appends a leaf citing the latest policy leaf (or `cite`).
        mutating func append(_ payload: Leaf.Payload, cite: Int? = nil) {
            let p = cite ?? leaves.indices.last { [.policy, .setSequencer, .continuation].contains(leaves[$0].kind) }!
            leaves.append(Leaf(datanet: datanet, policy: (UInt64(p), leaves[p].hash), payload: payload))
        }
    }

    /// The names of the failing checks, depth first.
    static func failing(_ v: ReceiptVerification) -> [String] {
        func walk(_ c: VerificationCheck) -> [String] { (c.status == .fail ? [c.name] : []) + c.children.flatMap(walk) }
        return v.checks.flatMap(walk)
    }

    /// A Datanet with an accepted contribution, a later policy change and a second contribution.
    static func world() throws -> (World, accepted: Envelope, other: Envelope) {
        let w = try World()
        let a = try w.contribution("song A"), b = try w.contribution("song B")
        try w.ledger.propose(all: [a, b])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(all: [try w.review([a.id], accept: true, by: w.curatorA), try w.review([a.id], accept: true, by: w.curatorB)])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        return (w, a, b)
    }

    @Test func honestReceiptVerifiesAndRoundTrips() throws {
        let (w, a, b) = try Self.world()
        let r = try w.ledger.provenance.receipt(for: a.id)
        let v = try w.ledger.provenance.verify(r, anchor: w.datanet)
        #expect(v.holds, "\(Self.failing(v))")
        #expect(v.anchored)
        #expect(try Receipt(json: try r.json) == r)
        // Undecided: the decision check is n/a, not ✗.
        let undecided = try w.ledger.provenance.verify(try w.ledger.provenance.receipt(for: b.id), anchor: w.datanet)
        #expect(undecided.holds)
        #expect(undecided.checks.first { $0.name == "decision" }?.status == .notApplicable)
        // Without an anchor: NOT ANCHORED, failing unless self-contained; a pin anchors it.
        let bare = try w.ledger.provenance.verify(r, anchor: nil)
        #expect(!bare.anchored && !bare.holds && bare.holdsSelfContained)
        try w.ledger.provenance.pin(w.datanet)
        #expect(try w.ledger.provenance.verify(r, anchor: nil).holds)
    }

    @Test func lookAlikeDatanetIsNotAnchored() throws {
        let (w, _, _) = try Self.world()
        let (copy, a2, _) = try Self.world() // same name "birds", other keys
        let r = try copy.ledger.provenance.receipt(for: a2.id)
        let v = r.verify(anchor: w.datanet)
        #expect(!v.anchored && !v.holds)
        #expect(v.holdsSelfContained) // it is a perfectly good receipt of another Datanet
        #expect(Self.failing(v) == ["anchored"])
    }

    @Test func refreshAddsAConsistencyProof() throws {
        let (w, a, b) = try Self.world()
        let old = try w.ledger.provenance.receipt(for: a.id)
        try w.ledger.propose(try w.review([b.id], accept: false, by: w.curatorA))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let fresh = try w.ledger.provenance.refreshed(old)
        #expect(fresh.previous?.checkpoint == old.checkpoint)
        #expect(try w.ledger.provenance.verify(fresh, anchor: w.datanet).holds)
        var bad = fresh
        bad.previous!.consistency[0] = Data(Digest.zero.bytes).base64EncodedString()
        #expect(Self.failing(try w.ledger.provenance.verify(bad, anchor: w.datanet)) == ["consistent with the checkpoint it was first made for"])
        // A store whose log differs at the receipt's size reports the fork.
        #expect(Receipt.heldCheck(HeldLog(size: 9, rootAtReceiptSize: .zero), cp: try Checkpoint.unverified(note: fresh.checkpoint)).status == .fail)
    }

    /// Edits by someone holding no key: each flips the check guarding the edited value.
    @Test(arguments: [
        ("datanet id", "anchored"),
        ("view", "receipt is well-formed"),
        ("leaf bytes", "leaf 1 included"),
        ("intake proof", "leaf 1 included"),
        ("checkpoint size", "checkpoint signature"),
        ("checkpoint signature", "checkpoint signature"),
        ("contribution id", "intake leaf"),
        ("later policy removing the author dropped", "policy chain reaches the checkpoint"),
        ("last leaf dropped", "policy chain reaches the checkpoint"),
        ("decision of another contribution", "decision leaf"),
    ])
    func editedReceiptFails(_ edit: String, _ check: String) throws {
        let (w, a, b) = try Self.world()
        // A later policy change (curator B and the author removed) so the chain has two leaves.
        var st = try w.ledger.reader.state(of: w.datanet).policy
        st.curators = [w.curatorA.publicKey]; st.quorum = 1; st.contributors = [w.curatorA.publicKey]
        var change = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: st, summary: "drop B").body)
        try change.sign(with: w.owner)
        try w.ledger.propose(change)
        try w.ledger.propose(try w.review([b.id], accept: false, by: w.curatorA))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let honest = try w.ledger.provenance.receipt(for: a.id)
        #expect(try w.ledger.provenance.verify(honest, anchor: w.datanet).holds)
        var r = honest
        switch edit {
        case "datanet id": r.datanet = String(repeating: "ab", count: 32)
        case "view": r.intake.view = .string("nothing to see")
        case "leaf bytes":
            var bytes = Array(Data(base64Encoded: r.intake.leaf)!)
            bytes[bytes.count - 3] ^= 1
            r.intake.leaf = Data(bytes).base64EncodedString()
        case "intake proof": r.intake.proof[0] = Data(Digest.zero.bytes).base64EncodedString()
        case "checkpoint size":
            let size = try Checkpoint.unverified(note: r.checkpoint).size
            r.checkpoint = r.checkpoint.replacingOccurrences(of: "\n\(size)\n", with: "\n\(size + 1)\n")
        case "checkpoint signature":
            var lines = r.checkpoint.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var sig = Array(Data(base64Encoded: String(lines[4].split(separator: " ")[2]))!)
            sig[10] ^= 1
            lines[4] = "— \(Checkpoint.origin(of: w.datanet)) " + Data(sig).base64EncodedString()
            r.checkpoint = lines.joined(separator: "\n")
        case "contribution id": r.contribution = b.id.hex
        case "later policy removing the author dropped": r.chain.removeLast()
        case "last leaf dropped": r.last = nil
        case "decision of another contribution": r.decision = try w.ledger.provenance.receipt(for: b.id).decision
        default: Issue.record("unknown edit \(edit)")
        }
        let v = try w.ledger.provenance.verify(r, anchor: w.datanet)
        #expect(!v.holds)
        #expect(Self.failing(v).contains(check), "\(edit): \(Self.failing(v))")
    }

    /// Logs a misbehaving sequencer could write and sign: each is caught by its check.
    @Test(arguments: [
        ("decision cites a stale policy", "cites the latest policy leaf before it"),
        ("review by a removed curator counted", "reviews sufficient under the cited policy"),
        ("accepted without quorum", "reviews sufficient under the cited policy"),
        ("author not allowed", "author allowed under the cited policy"),
        ("intake names another author", "intake leaf"),
        ("policy change without quorum", "leaf 3: policy: drop B"),
        ("checkpoint by the old key after a handoff", "checkpoint signature"),
        ("contribution with a forged signature", "author's signature"),
        ("decision naming another intake index", "decision leaf"),
        ("policy record changing the sequencer", "leaf 2: policy: move the key"),
    ])
    func misbehavingSequencerIsCaught(_ misdeed: String, _ check: String) throws {
        let w = try World()
        let a = try w.contribution("song A")
        let reviewA = try w.review([a.id], accept: true, by: w.curatorA), reviewB = try w.review([a.id], accept: true, by: w.curatorB)
        var forge = try Forge(w)
        let intakeFields = Leaf.Intake(author: a.signatures[0].key, record: a.id, content: ObjectID(SHA256.hash(Array("song A".utf8))), contribution: a)
        let intake = Leaf.Payload.intake(intakeFields)
        func fields(_ reviews: [Envelope]) -> Leaf.Decision {
            .init(contribution: a.id, intake: 1, accepted: true, reason: "accepted by \(reviews.count) curator(s)", reviews: .embedded(reviews.sorted { $0.id < $1.id }))
        }
        func decision(_ reviews: [Envelope]) -> Leaf.Payload { .decision(fields(reviews)) }
        var policy = try w.ledger.reader.state(of: w.datanet).policy
        policy.curators = [w.curatorA.publicKey]; policy.quorum = 1
        var drop = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: policy, summary: "drop B").body)
        try drop.sign(with: w.owner)
        var key = w.sequencer
        switch misdeed {
        case "decision cites a stale policy":
            forge.append(intake)
            forge.append(.policy(drop))
            forge.append(decision([reviewA, reviewB]), cite: 0)
        case "review by a removed curator counted":
            forge.append(intake)
            forge.append(.policy(drop))
            forge.append(decision([reviewB]))
        case "accepted without quorum":
            forge.append(intake)
            forge.append(decision([reviewA]))
        case "author not allowed":
            var closed = try w.ledger.reader.state(of: w.datanet).policy
            closed.contributors = [w.outsider.publicKey]
            var p = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: closed, summary: "closed").body)
            try p.sign(with: w.owner)
            forge.append(.policy(p))
            forge.append(intake)
            var moved = fields([reviewA, reviewB])
            moved.intake = 2
            forge.append(.decision(moved))
        case "intake names another author":
            var wrong = intakeFields
            wrong.author = w.outsider.publicKey
            forge.append(.intake(wrong))
        case "policy change without quorum":
            var weak = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: policy, summary: "drop B").body)
            try weak.sign(with: w.curatorA) // one curator of two, quorum 2, not the owner
            forge.append(intake)
            forge.append(decision([reviewA, reviewB]))
            forge.append(.policy(weak))
        case "checkpoint by the old key after a handoff":
            let next = try SigningKey()
            var h = Envelope(kind: .setSequencer, body: SetSequencer(datanet: w.datanet, previous: w.datanet.genesis, sequencer: next.publicKey, takesOver: nil).body)
            try h.sign(with: w.owner)
            forge.append(intake)
            forge.append(.setSequencer(h))
            forge.append(decision([reviewA, reviewB]))
            key = w.sequencer // should be `next` from size 4 on
        case "contribution with a forged signature":
            var bytes = a.encoded
            bytes[bytes.count - 1] ^= 1 // the last byte of the author's signature
            var forged = intakeFields
            forged.contribution = try Envelope(encoded: bytes)
            forge.append(.intake(forged))
        case "policy record changing the sequencer":
            var moved = try w.ledger.reader.state(of: w.datanet).policy
            moved.sequencer = w.outsider.publicKey
            var p = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: moved, summary: "move the key").body)
            try p.sign(with: w.owner)
            forge.append(intake)
            forge.append(.policy(p))
            forge.append(decision([reviewA, reviewB]))
            // The replay flags it too, at that leaf.
            var auditor = LogAuditor(datanet: w.datanet)
            for (i, leaf) in forge.leaves.enumerated() { auditor.add(CheckedLeaf(index: UInt64(i), bytes: leaf.encoded)) }
            #expect(auditor.violations.map(\.rule) == ["a policy record keeps the sequencer"] && auditor.violations.first?.index == 2)
            #expect(throws: LedgerRefusal.policyChangesSequencer) { try w.ledger.propose(p) }
        case "decision naming another intake index":
            forge.append(intake)
            var d = fields([reviewA, reviewB])
            d.intake = 7
            forge.append(.decision(d))
        default: Issue.record("unknown misdeed \(misdeed)")
        }
        let r = try forge.receipt(a.id, key: key)
        let v = r.verify(anchor: w.datanet)
        #expect(!v.holds)
        #expect(Self.failing(v).contains(check), "\(misdeed): \(Self.failing(v))")
    }

    /// What a receipt cannot prove it says so (trust model, item 3). A sequencer alone writes a
    /// decision citing the genesis after a policy change removed curator B, and leaves that
    /// change out of every later citation: the receipt still holds on its own, but its citations
    /// are marked as the sequencer's statement, not ✓, and named in `takenOnTrust`. `--strict`
    /// turns statements into checks against this store's audited log, or fails without it.
    @Test func whatAReceiptTakesOnTheSequencersWord() throws {
        let w = try World()
        let a = try w.contribution("song A")
        let reviewA = try w.review([a.id], accept: true, by: w.curatorA), reviewB = try w.review([a.id], accept: true, by: w.curatorB)
        var forge = try Forge(w)
        forge.append(.intake(Leaf.Intake(author: a.signatures[0].key, record: a.id, content: ObjectID(SHA256.hash(Array("song A".utf8))), contribution: a)))
        var policy = try w.ledger.reader.state(of: w.datanet).policy
        policy.curators = [w.curatorA.publicKey]; policy.quorum = 1
        var drop = Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis, state: policy, summary: "drop B").body)
        try drop.sign(with: w.owner)
        forge.append(.policy(drop), cite: 0)
        forge.append(.decision(.init(contribution: a.id, intake: 1, accepted: true, reason: "accepted by 2 curator(s)",
                                     reviews: .embedded([reviewA, reviewB].sorted { $0.id < $1.id }))), cite: 0)
        let v = try forge.receipt(a.id, key: w.sequencer, chain: [0]).verify(anchor: w.datanet)
        #expect(v.holds)
        #expect(v.takenOnTrust == ["cites the latest policy leaf before it"])
        let citations = v.checks.flatMap(\.children).filter { $0.name == "cites the latest policy leaf before it" }
        #expect(citations.count == 2 && citations.allSatisfy { $0.status == .statement })

        // An honest log held here: --strict checks the statements; elsewhere it fails.
        let (honest, accepted, _) = try Self.world()
        let receipt = try honest.ledger.provenance.receipt(for: accepted.id)
        let plain = try honest.ledger.provenance.verify(receipt, anchor: honest.datanet)
        #expect(plain.holds && !plain.takenOnTrust.isEmpty && !plain.notChecked.contains("consistent with the newest checkpoint held"))
        // n/a is never counted as checked: away from the log, that check is named as not checked.
        let offline = receipt.verify(anchor: honest.datanet)
        #expect(offline.holds && offline.notChecked.contains("consistent with the newest checkpoint held"))
        let strict = try honest.ledger.provenance.verify(receipt, anchor: honest.datanet, strict: true)
        #expect(strict.holds && strict.takenOnTrust.isEmpty && strict.checks.last?.name == "strict: the log is held here and audited")
        let elsewhere = try World()
        let away = try elsewhere.ledger.provenance.verify(receipt, anchor: honest.datanet, strict: true)
        #expect(!away.holds && Self.failing(away) == ["strict: the log is held here and audited"])
    }

    /// The forge itself makes receipts that hold when the log is honest, so the failures above
    /// come from the misdeeds and not from the forge.
    @Test func forgeOfAnHonestLogHolds() throws {
        let (w, a, _) = try Self.world()
        let v = try Forge(w).receipt(a.id, key: w.sequencer).verify(anchor: w.datanet)
        #expect(v.holds, "\(Self.failing(v))")
    }

    @Test func malformedReceiptFilesAreRefused() throws {
        let (w, a, _) = try Self.world()
        let good = try w.ledger.provenance.receipt(for: a.id).json
        #expect(performing: { try Receipt(json: Data("{}".utf8)) }, throws: { isMalformed($0, "missing field 'type'") })
        #expect(performing: { try Receipt(json: Data("[1,2".utf8)) }, throws: { isMalformed($0, "JSON: expected ']'") })
        #expect(performing: { try Receipt(json: good.prefix(good.count / 2)) }, throws: { isMalformed($0, "JSON: unterminated") })
        var obj = try JSONSerialization.jsonObject(with: good) as! [String: Any]
        obj["type"] = "datanet/receipt/v3"
        #expect(performing: { try Receipt(json: try JSONSerialization.data(withJSONObject: obj)) },
                throws: { isMalformed($0, "type is \"datanet/receipt/v3\"") })
        // A v1 receipt has no review leaves: the field is not one of v1's.
        obj["type"] = Receipt.legacyTypeName
        #expect(performing: { try Receipt(json: try JSONSerialization.data(withJSONObject: obj)) },
                throws: { isMalformed($0, "unknown datanet/receipt/v1 field \"reviews\"") })
        // Unknown fields are refused, not ignored: a misspelt "decision" must not pass as absent.
        obj["type"] = Receipt.typeName
        obj["decisions"] = obj.removeValue(forKey: "decision")
        #expect(performing: { try Receipt(json: try JSONSerialization.data(withJSONObject: obj)) },
                throws: { isMalformed($0, "unknown datanet/receipt/v2 field \"decisions\"") })
        #expect(performing: { try Receipt(json: Data(count: Receipt.maximumSize + 1)) }, throws: { isMalformed($0, "exceeds \(Receipt.maximumSize)") })
    }
}
