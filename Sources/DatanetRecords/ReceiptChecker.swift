import DatanetCrypto
import DatanetObjects
import Foundation

/// The checks of one receipt, in the order `verify` prints them. Each check names the value it
/// guards, so altering that value in a receipt turns exactly that check to ✗.
package struct ReceiptChecker {
    package static let anchorCheckName = "anchored"
    package let receipt: Receipt, cp: Checkpoint, chain: [ParsedEntry]
    /// The policy state after each chain leaf, and the record id the next policy must name.
    package private(set) var states = [PolicyState]()
    package private(set) var policyRecords = [RecordID]()

    package init(receipt: Receipt, cp: Checkpoint, chain: [ParsedEntry]) {
        (self.receipt, self.cp, self.chain) = (receipt, cp, chain)
    }

    private func included(_ e: ParsedEntry) -> VerificationCheck {
        do {
            guard e.index < cp.size else { throw Merkle.ProofError.invalidRange("index \(e.index) is not below size \(cp.size)") }
            try Merkle.verifyInclusion(index: e.index, size: cp.size, leafHash: e.hash, proof: e.proof, root: cp.root)
            return VerificationCheck("leaf \(e.index) included", .pass, "inclusion proof to the checkpoint root")
        } catch {
            return VerificationCheck("leaf \(e.index) included", .fail, "inclusion proof fails: \(error)")
        }
    }

    private static func check(_ name: String, _ ok: Bool, _ pass: String, _ fail: String) -> VerificationCheck {
        VerificationCheck(name, ok ? .pass : .fail, ok ? pass : fail)
    }

    // MARK: Genesis and anchor

    package mutating func genesisCheck(anchor: DatanetID?) -> (check: VerificationCheck, anchored: Bool, id: DatanetID?) {
        guard let first = chain.first, first.index == 0, first.leaf.kind == .policy, first.leaf.policy == nil,
              let envelope = first.leaf.governing, case .genesis(let g)? = try? Record.verified(envelope) else {
            return (VerificationCheck(Self.anchorCheckName, .fail, "the chain does not start with the genesis leaf at index 0"), false, nil)
        }
        let id = DatanetID(genesis: envelope.id)
        states = [g.policy]
        policyRecords = [envelope.id]
        guard first.leaf.datanet == id, receipt.datanet == id.hex else {
            return (VerificationCheck(Self.anchorCheckName, .fail, "the genesis id \(id.hex) is not the Datanet the receipt names"), false, id)
        }
        let anchored = anchor == id
        let detail = anchored ? "anchored at \(id.hex)"
            : anchor.map { "NOT ANCHORED: genesis \(id.hex) is not the anchor \($0.hex)" } ?? "NOT ANCHORED: no --datanet given and none pinned"
        return (VerificationCheck(Self.anchorCheckName, anchored ? .pass : .fail, detail,
                                  children: [VerificationCheck("genesis", .pass, "\(g.policy.name), signed by its owner \(g.policy.owner)"),
                                             included(first)]), anchored, id)
    }

    // MARK: Policy chain and sequencer key

    package mutating func chainCheck(genesis: DatanetID) -> VerificationCheck {
        var children = [VerificationCheck]()
        for i in 1..<max(1, chain.count) {
            let e = chain[i], prev = chain[i - 1]
            var problems = [String]()
            if e.index <= prev.index { problems.append("index \(e.index) does not follow \(prev.index)") }
            if e.leaf.datanet != genesis { problems.append("leaf is for another Datanet") }
            if e.leaf.policy?.index != prev.index || e.leaf.policy?.hash != prev.hash {
                problems.append("does not cite the previous chain leaf \(prev.index)")
            }
            var state = states.last!
            var summary = e.leaf.kind.description
            do {
                guard let envelope = e.leaf.governing else { throw RecordError.malformed("a \(e.leaf.kind) leaf is not a policy chain leaf") }
                let (record, signers) = try Record.verifiedWithSigners(envelope)
                func governed(_ previous: RecordID, _ datanet: DatanetID) {
                    if datanet != genesis { problems.append("record is for another Datanet") }
                    if previous != policyRecords.last! { problems.append("names \(previous.hex) as previous, not the policy in force") }
                    if !state.authorizesGovernance(signers) { problems.append("lacks the owner's signature or a curator quorum") }
                }
                switch (e.leaf.kind, record) {
                case (.policy, .policy(let p)):
                    governed(p.previous, p.datanet)
                    if !state.keepsSequencer(p.state) { problems.append("a policy record changes the sequencer; only set-sequencer and continuation do") }
                    state = p.state; summary = "policy: \(p.summary)"
                case (.setSequencer, .setSequencer(let h)):
                    governed(h.previous, h.datanet); state.sequencer = h.sequencer; summary = "key handoff to \(h.sequencer)"
                case (.continuation, .continuation(let c)):
                    if c.datanet != genesis { problems.append("record is for another Datanet") }
                    if !state.authorizesContinuation(signers) { problems.append("a continuation must be signed by the owner") }
                    if c.size != e.index { problems.append("continuation names size \(c.size), not its own index \(e.index)") }
                    state.sequencer = c.sequencer; summary = "continuation under \(c.sequencer)"
                default: problems.append("\(e.leaf.kind) leaf carries a \(envelope.kind.rawValue) record")
                }
                policyRecords.append(envelope.id)
            } catch {
                problems.append("\(error)")
                policyRecords.append(RecordID(.zero))
            }
            states.append(state)
            children.append(Self.check("leaf \(e.index): \(summary)", problems.isEmpty, "cites leaf \(prev.index); signed as its policy requires",
                                       problems.joined(separator: "; ")))
            children.append(included(e))
        }
        return VerificationCheck("policy chain", .pass, "\(chain.count) leaf/leaves from the genesis, each citing the one before", children: children)
    }

    /// The sequencer key in force for a checkpoint of `size`: a set-sequencer leaf at q is the
    /// old key's last (checkpoint q + 1); a continuation at c is the new key's first.
    package func keyInForce(size: UInt64) -> (key: PublicKey, handoffs: Int)? {
        guard var key = states.first?.sequencer else { return nil }
        var handoffs = 0
        for (i, e) in chain.enumerated().dropFirst() where i < states.count {
            if let from = e.leaf.kind.newKeySigns(from: e.index), size >= from { key = states[i].sequencer; handoffs += 1 }
        }
        return (key, handoffs)
    }

    package func checkpointCheck(last: ParsedEntry?) -> VerificationCheck {
        var children = [VerificationCheck]()
        guard cp.size > 0 else { return VerificationCheck("checkpoint", .fail, "a checkpoint of size 0 covers no leaf") }
        guard let (key, handoffs) = keyInForce(size: cp.size) else { return VerificationCheck("checkpoint", .fail, "no sequencer key") }
        children.append(VerificationCheck("sequencer key in force at size \(cp.size)", .pass, "\(key) (after \(handoffs) handoff(s))"))
        let origin = Checkpoint.origin(of: chain[0].leaf.datanet)
        do {
            _ = try Checkpoint.verify(note: receipt.checkpoint, key: key)
            children.append(Self.check("checkpoint signature", cp.origin == origin, "valid signature by \(key) on \(origin)",
                                       "origin is \(cp.origin), not \(origin)"))
        } catch {
            children.append(VerificationCheck("checkpoint signature", .fail, "\(error)"))
        }
        // The chain must reach the checkpoint: its last leaf is the log's last leaf, or the
        // log's last leaf cites it; otherwise a later policy change could be left out.
        let end = chain.last!
        if end.index == cp.size - 1 {
            children.append(VerificationCheck("policy chain reaches the checkpoint", .pass, "the log's last leaf is the chain's last"))
        } else if let last {
            let ok = last.index == cp.size - 1 && last.leaf.policy?.index == end.index && last.leaf.policy?.hash == end.hash
                && ![.policy, .setSequencer, .continuation].contains(last.leaf.kind)
            children.append(Self.check("policy chain reaches the checkpoint", ok, "the log's last leaf \(last.index) cites chain leaf \(end.index)",
                                       "leaf \(last.index) is not the log's last or does not cite the chain's last leaf \(end.index)"))
            children.append(included(last))
        } else {
            children.append(VerificationCheck("policy chain reaches the checkpoint", .fail,
                                              "the chain ends at \(end.index) and the receipt lacks the log's last leaf \(cp.size - 1)"))
        }
        return VerificationCheck("checkpoint", .pass, "size \(cp.size), root \(cp.root.hex)", children: children)
    }

    /// The chain position of the policy a leaf at `index` cites, when it is the latest policy
    /// leaf before that index.
    package func citedPolicy(_ e: ParsedEntry) -> (position: Int?, check: VerificationCheck) {
        let name = "cites the latest policy leaf before it"
        guard let cite = e.leaf.policy, let k = chain.firstIndex(where: { $0.index == cite.index && $0.hash == cite.hash }),
              k < states.count else {
            return (nil, VerificationCheck(name, .fail, "the cited policy leaf is not in the receipt's policy chain"))
        }
        guard cite.index < e.index else {
            return (nil, VerificationCheck(name, .fail, "leaf \(e.index) cites policy leaf \(cite.index), which does not come before it"))
        }
        if k + 1 < chain.count, chain[k + 1].index <= e.index {
            return (nil, VerificationCheck(name, .fail, "policy leaf \(chain[k + 1].index) came into force before leaf \(e.index), which cites \(cite.index)"))
        }
        // The chain shows no later policy leaf before this one; that the log holds none outside
        // the chain (a sequencer citing an older policy than a checkpointed change) it cannot show.
        return (k, VerificationCheck(name, .statement, "policy leaf \(cite.index), the latest in the receipt's chain before leaf \(e.index); that the log holds no later one is checked by `datanet audit`"))
    }

    // MARK: Intake and decision

    package func intakeCheck(_ e: ParsedEntry, genesis: DatanetID) -> VerificationCheck {
        var children = [included(e)]
        var problems = [String]()
        if e.leaf.kind != .intake { problems.append("leaf \(e.index) is a \(e.leaf.kind) leaf") }
        if e.leaf.datanet != genesis { problems.append("leaf is for another Datanet") }
        do {
            guard let fields = e.leaf.intake else { throw RecordError.malformed("not an intake leaf") }
            let envelope = fields.contribution
            guard case .contribution(let c) = try Record.verified(envelope) else { throw RecordError.malformed("not a contribution") }
            children.append(VerificationCheck("author's signature", .pass, "by \(c.author)"))
            if envelope.id.hex != receipt.contribution || fields.record != envelope.id { problems.append("record id differs from the receipt's contribution") }
            if fields.author != c.author { problems.append("author field differs from the record's author") }
            if fields.content != c.content { problems.append("content field differs from the record's content") }
            if c.datanet != genesis { problems.append("contribution is for another Datanet") }
            let (k, cite) = citedPolicy(e)
            children.append(cite)
            if let k {
                let allowed = states[k].contributors.map { $0.contains(c.author) } ?? true
                children.append(Self.check("author allowed under the cited policy", allowed,
                                           states[k].contributors == nil ? "anyone may contribute" : "listed contributor",
                                           "\(c.author) is not a contributor under policy leaf \(chain[k].index)"))
            }
        } catch {
            children.append(VerificationCheck("author's signature", .fail, "\(error)"))
        }
        children.insert(Self.check("intake leaf", problems.isEmpty, "contribution \(receipt.contribution.prefix(16))… taken in at \(e.index)",
                                   problems.joined(separator: "; ")), at: 0)
        return VerificationCheck("intake", .pass, "leaf \(e.index)", children: children)
    }

    package func decisionCheck(_ d: ParsedEntry?, intake: ParsedEntry, reviews: [ParsedEntry], genesis: DatanetID) -> VerificationCheck {
        guard let e = d else {
            if !reviews.isEmpty { return VerificationCheck("decision", .fail, "the receipt carries review leaves but no decision") }
            return VerificationCheck("decision", .notApplicable,
                                     "no decision leaf in this receipt: undecided at its checkpoint, or left out (a receipt cannot show there is none)")
        }
        var children = [included(e)]
        var problems = [String]()
        if e.leaf.kind != .decision { problems.append("leaf \(e.index) is a \(e.leaf.kind) leaf") }
        if e.leaf.datanet != genesis { problems.append("leaf is for another Datanet") }
        let fields = e.leaf.decision
        if fields?.contribution.hex != receipt.contribution { problems.append("decides another contribution") }
        if fields?.intake != intake.index { problems.append("names intake index \(fields.map { String($0.intake) } ?? "?"), not \(intake.index)") }
        if e.index <= intake.index { problems.append("comes before its intake") }
        let accepted = fields?.accepted ?? false
        let (k, cite) = citedPolicy(e)
        children.append(cite)
        if let k, let fields {
            var counted = [(id: RecordID, record: Result<Review, RecordError>)]()
            switch fields.reviews {
            case .embedded(let envelopes):
                for (i, envelope) in envelopes.enumerated() {
                    if i > 0 && !(envelopes[i - 1].id < envelope.id) { problems.append("embedded reviews are not sorted by id") }
                    counted.append((envelope.id, Self.review(envelope)))
                }
                if !reviews.isEmpty { problems.append("the receipt carries review leaves its decision does not cite") }
            case .cited(let indexes):
                if reviews.map(\.index) != indexes {
                    problems.append("the receipt's review leaves (\(reviews.map { String($0.index) }.joined(separator: ", "))) are not the ones the decision cites (\(indexes.map(String.init).joined(separator: ", ")))")
                }
                for r in reviews {
                    children.append(included(r))
                    guard r.leaf.datanet == genesis, r.index < e.index, let envelope = r.leaf.review else {
                        counted.append((RecordID(.zero), .failure(.malformed("leaf \(r.index) is not a review leaf of this Datanet before the decision"))))
                        continue
                    }
                    counted.append((envelope.id, Self.review(envelope)))
                }
            }
            children.append(reviewsCheck(counted, accepted: accepted, policy: states[k], genesis: genesis, reason: fields.reason))
        }
        children.insert(Self.check("decision leaf", problems.isEmpty, "\(accepted ? "accepted" : "rejected") at \(e.index)",
                                   problems.joined(separator: "; ")), at: 0)
        return VerificationCheck("decision", .pass, accepted ? "accepted" : "rejected", children: children)
    }

    /// A review record with its signature checked.
    private static func review(_ envelope: Envelope) -> Result<Review, RecordError> {
        Result { () throws(RecordError) in
            guard case .review(let r) = try Record.verified(envelope) else { throw .malformed("a \(envelope.kind.rawValue) record, not a review") }
            return r
        }
    }

    private func reviewsCheck(_ reviews: [(id: RecordID, record: Result<Review, RecordError>)], accepted: Bool, policy: PolicyState,
                              genesis: DatanetID, reason: String) -> VerificationCheck {
        let name = "reviews sufficient under the cited policy"
        if reviews.isEmpty && !accepted && reason.hasPrefix("duplicate of ") {
            return VerificationCheck(name, .statement, "rejected at intake as an exact duplicate (\(reason)); that the earlier contribution came first with the same content is checked by `datanet audit`")
        }
        var reviewers = Set<PublicKey>()
        let contribution = RecordID(hex: receipt.contribution)
        for (i, (id, result)) in reviews.enumerated() {
            guard case .success(let r) = result else {
                return VerificationCheck(name, .fail, "review \(i) is not a validly signed review")
            }
            guard r.datanet == genesis, let contribution, r.contributions.binarySearch(contribution) else {
                return VerificationCheck(name, .fail, "review \(id.hex.prefix(16))… is not about this contribution")
            }
            guard policy.mayReview(r.reviewer) else {
                return VerificationCheck(name, .fail, "reviewer \(r.reviewer) is not a curator under the cited policy")
            }
            guard r.accept == accepted, reviewers.insert(r.reviewer).inserted else {
                return VerificationCheck(name, .fail, "review \(id.hex.prefix(16))… disagrees with the decision or repeats a curator")
            }
        }
        let needed = policy.reviewsNeeded(toAccept: accepted)
        return Self.check(name, reviewers.count >= needed, "\(reviewers.count) curator(s) \(accepted ? "accept" : "reject"); \(needed) needed",
                          "\(reviewers.count) curator(s) \(accepted ? "accept" : "reject"); \(needed) needed")
    }

    /// A consistency proof's hashes from their base64 text (each 32 bytes, canonical).
    private static func consistencyHashes(_ text: [String]) throws(RecordError) -> [Digest] {
        var out = [Digest]()
        for s in text {
            guard let b = CanonicalBase64.decode(s), let d = Digest(bytes: b) else { throw .malformed("a consistency hash is not 32 bytes of canonical base64") }
            out.append(d)
        }
        return out
    }

    // MARK: Key handoffs

    /// Each key handoff in the chain must show that the checkpoint's log extends the log it
    /// took over: a consistency proof from the (size, root) it names to the checkpoint. Nil when
    /// the chain has no handoff (nothing to show).
    package func handoffsCheck() -> VerificationCheck? {
        let name = "handoffs keep the history before them"
        var children = [VerificationCheck]()
        var proofs = Dictionary((receipt.handoffs ?? []).map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        for e in chain.dropFirst() where e.leaf.kind == .setSequencer || e.leaf.kind == .continuation {
            let label = "leaf \(e.index): \(e.leaf.kind)"
            guard let envelope = e.leaf.governing, let record = try? Record(envelope) else { continue } // the chain check fails it
            guard let (size, root) = record.takesOver else {
                children.append(VerificationCheck(label, .statement, "names no log it takes over (written before handoffs bound one): that the new key kept the history before leaf \(e.index) is its word; `datanet audit` of a log held since then checks it"))
                continue
            }
            guard size == e.index else {
                children.append(VerificationCheck(label, .fail, "takes over at size \(size), not the log before it (\(e.index) leaves)"))
                continue
            }
            guard let h = proofs.removeValue(forKey: e.index) else {
                // Only a continuation can sit in a v1 receipt without a proof: no build that
                // wrote v1 receipts wrote a set-sequencer binding a log.
                children.append(receipt.type == Receipt.legacyTypeName && e.leaf.kind == .continuation
                    ? VerificationCheck(label, .statement, "a \(Receipt.legacyTypeName) receipt carries no consistency proof from size \(size): that the checkpoint extends the log taken over is the sequencer's word")
                    : VerificationCheck(label, .fail, "the receipt carries no consistency proof from the size it takes over (\(size)) to the checkpoint"))
                continue
            }
            do {
                let proof = try Self.consistencyHashes(h.consistency)
                try Merkle.verifyConsistency(size1: size, size2: cp.size, root1: root, root2: cp.root, proof: proof)
                children.append(VerificationCheck(label, .pass, "the checkpoint extends the log it took over (size \(size) → \(cp.size))"))
            } catch {
                children.append(VerificationCheck(label, .fail, "consistency from the log it took over (size \(size)) to the checkpoint fails: \(error)"))
            }
        }
        for index in proofs.keys.sorted() {
            children.append(VerificationCheck("leaf \(index)", .fail, "the receipt carries a handoff proof for a leaf that is not a handoff in its chain"))
        }
        return children.isEmpty ? nil : VerificationCheck(name, .pass, "\(children.count) handoff(s)", children: children)
    }

    // MARK: Previous checkpoint

    package func previousCheck() -> VerificationCheck {
        let name = "consistent with the checkpoint it was first made for"
        guard let previous = receipt.previous else { return VerificationCheck(name, .notApplicable, "not refreshed") }
        do {
            let old = try Checkpoint.unverified(note: previous.checkpoint)
            guard let (key, _) = keyInForce(size: old.size) else { throw RecordError.malformed("no key") }
            _ = try Checkpoint.verify(note: previous.checkpoint, key: key)
            guard old.origin == cp.origin else { throw RecordError.malformed("origin differs") }
            let proof = try Self.consistencyHashes(previous.consistency)
            try Merkle.verifyConsistency(size1: old.size, size2: cp.size, root1: old.root, root2: cp.root, proof: proof)
            return VerificationCheck(name, .pass, "size \(old.size) → \(cp.size)")
        } catch {
            return VerificationCheck(name, .fail, "\(error)")
        }
    }
}
