import DatanetCBOR
import DatanetCrypto
import DatanetStore

/// How reviews decide a contribution (schema/curation.md, where each rule is a table row):
/// - only reviews by curators in force when the decision is sequenced count;
/// - a curator's latest review (in the order this sequencer first saw them) replaces its
///   earlier ones;
/// - accepted when distinct accepting curators reach the quorum;
/// - rejected when so many reject that the quorum can no longer be reached
///   (rejects > curators − quorum): with quorum = all curators, one reject decides;
/// - otherwise still undecided.
public enum Curation {
    /// The outcome for one contribution given the counted verdicts (curator → accept?).
    public static func outcome(verdicts: [PublicKey: Bool], curators: Int, quorum: UInt64) -> Bool? {
        let accepts = verdicts.values.filter { $0 }.count
        let rejects = verdicts.count - accepts
        if UInt64(accepts) >= quorum { return true }
        if rejects > curators - Int(quorum) { return false }
        return nil
    }
}

extension Ledger {
    func decide(_ txn: Transaction, _ d: Digest, policy: PolicyState, reviews: [(Digest, Review, [UInt8])],
                append: (LeafKind, [UInt64: CBOR]) throws -> (UInt64, Digest), report: inout SequenceReport) throws {
        let prefix = Self.key(d, 0)
        var open = [(Digest, UInt64, UInt64, [UInt8])]()
        try txn.scan(undecided, from: prefix) { k, v in
            guard k.starts(with: prefix) else { return false }
            open.append((Digest(UnsafeRawBufferPointer(rebasing: k[40...]))!, Self.u64(v), Self.u64(v, at: 8), Array(v[16...])))
            return true
        }
        open.sort { $0.1 < $1.1 } // intake order
        // Reviews by contribution, in the order they were first seen, counted curators only.
        let curators = Set(policy.curators)
        // Each review with its id and its bytes exactly as signed (copied into the leaf as is).
        var byContribution = [Digest: [(Review, Digest, [UInt8])]]()
        for (id, r, bytes) in reviews where curators.contains(r.reviewer) {
            for c in r.contributions { byContribution[c, default: []].append((r, id, bytes)) }
        }
        for (contribution, intakeIndex, size, author) in open {
            guard let candidates = byContribution[contribution] else { continue }
            var latest = [PublicKey: (Bool, Digest, [UInt8])]()
            for (r, id, bytes) in candidates { latest[r.reviewer] = (r.accept, id, bytes) }
            guard let accepted = Curation.outcome(verdicts: latest.mapValues(\.0), curators: policy.curators.count,
                                                  quorum: policy.quorum),
                  let cBytes = try txn.get(records, contribution) else { continue }
            let counted = latest.values.filter { $0.0 == accepted }.sorted { $0.1 < $1.1 }.map { CBOR.bytes($0.2) }
            let reason = accepted ? "accepted by \(counted.count) curator(s)" : "rejected by \(counted.count) curator(s)"
            let (index, _) = try append(.decision, [1: .bytes(contribution.bytes), 2: .unsigned(intakeIndex),
                                                    3: .unsigned(accepted ? 1 : 0), 4: .string(reason), 5: .array(counted),
                                                    6: .bytes(cBytes)])
            try txn.delete(undecided, prefix + contribution.bytes)
            try txn.put(decided, contribution, Self.u64Bytes(index))
            let quotaKey = d.bytes + author
            if let (n, b) = try txn.withValue(meta, quotaKey, { (Self.u64($0), Self.u64($0, at: 8)) }) {
                try txn.put(meta, quotaKey, Self.u64Bytes(n > 0 ? n - 1 : 0) + Self.u64Bytes(b >= size ? b - size : 0))
            }
            report.decisions.append((contribution, index, accepted, reason))
        }
        // A review leaves pending once every contribution it names is decided.
        for (id, r, _) in reviews where try r.contributions.allSatisfy({ try txn.contains(decided, $0) }) {
            try removePending(txn, id)
        }
    }
}
