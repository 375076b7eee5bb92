import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

extension Ledger {
    /// Flags near-duplicates among the contributions `ids` of `d` whose content came after
    /// their records (`fetch`, after `sync --records-only`), so the flags end as a clone that
    /// brought every content with its record would have left them (schema/curation.md
    /// "Near-duplicates"). Those held and not yet sketched are sketched in intake order, each
    /// against the earlier ones held; since content may arrive in any order, each later intake
    /// sketched before this call is then flagged again among all the earlier ones now held.
    /// Contributions whose content is still missing are left for a later call.
    public func flagFetched(_ d: DatanetID, _ ids: [RecordID]) throws {
        guard let bands = minhashBands, !ids.isEmpty else { return }
        try env.write { txn in
            var probes = [NearDuplicateProbe]()
            for id in Set(ids) {
                guard try !txn.contains(minhashes, d.bytes + id.bytes),
                      case .contribution(let c)? = try txn.get(records, id).flatMap({ try? Record(Envelope(encoded: $0)) }),
                      c.datanet == d else { continue }
                probes.append(NearDuplicateProbe(id: id, contribution: c, intakeIndex: try intake(txn, d, id)))
            }
            // Pending ones (no intake yet) after every intake, as they would arrive after them.
            probes.sort { ($0.intakeIndex ?? .max, $0.id) < ($1.intakeIndex ?? .max, $1.id) }
            guard let first = probes.first?.intakeIndex else {
                var added = BandsAdded()
                return try flagNearDuplicates(txn, probes, added: &added)
            }
            // The later intakes sketched before this call: only they can have missed one of these.
            var earlier = [(id: RecordID, intakeIndex: UInt64)]()
            try txn.scan(minhashes, from: d.bytes) { k, _ in
                guard k.count == 64, k.starts(with: d.bytes), let id = RecordID(UnsafeRawBufferPointer(rebasing: k[32...])) else { return false }
                if let at = try intake(txn, d, id), at > first { earlier.append((id, at)) }
                return true
            }
            var added = BandsAdded()
            try flagNearDuplicates(txn, probes, added: &added)
            for (id, at) in earlier { try reflag(txn, bands, d, id, intakeIndex: at) }
        }
    }

    /// The intake index of contribution `id` in `d`, nil when it is not taken in there.
    private func intake(_ txn: Transaction, _ d: DatanetID, _ id: RecordID) throws -> UInt64? {
        guard let v = try txn.get(placed, id), v.count == 40, v[0..<32].elementsEqual(d.bytes) else { return nil }
        return BigEndian.u64(v, at: 32)
    }

    /// Flags the sketched contribution `id`, taken in at `intakeIndex`, afresh among every
    /// contribution sketched now that shares a band with it (`flag` keeps the earlier ones and
    /// ranks them).
    private func reflag(_ txn: Transaction, _ bands: Table, _ d: DatanetID, _ id: RecordID, intakeIndex: UInt64) throws {
        guard let v = try txn.get(minhashes, d.bytes + id.bytes), v.count == MinHash.k * 8,
              case .contribution(let c)? = try txn.get(records, id).flatMap({ try? Record(Envelope(encoded: $0)) }) else { return }
        let sig = Self.slots(v)
        var candidates = Set<RecordID>()
        try members(txn, bands, of: Self.bandKeys(d, sig)) { _, other in candidates.insert(other) }
        try flag(txn, NearDuplicateProbe(id: id, contribution: c, intakeIndex: intakeIndex), sig, among: candidates)
    }
}
