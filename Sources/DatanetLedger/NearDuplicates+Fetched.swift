import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

extension Ledger {
    /// Flags near-duplicates among the contributions `ids` of `d` whose content came after
    /// their records (`fetch`, after `sync --records-only`), so an intake's flag ends as a clone
    /// that brought every content with its record would have left it (schema/curation.md
    /// "Near-duplicates"). Those held and not yet sketched are sketched in intake order (pending
    /// ones after, by id), each against the earlier ones held; since content may arrive in any
    /// order, every later intake sketched before this call that can resemble one of them is
    /// then flagged again among all the earlier ones now held. Contributions whose content is
    /// still missing are left for a later call; calling again with nothing new costs a few
    /// reads an id. Pending contributions are flagged when their content arrives, against what
    /// is held then, and not again.
    /// `sketches` are those of contents made as they arrived (the sketch of the text the
    /// content is, in `d`); the others are read back from the store.
    public func flagFetched(_ d: DatanetID, _ ids: [RecordID], sketches: [RecordID: TextSketch] = [:]) throws {
        try flagFetched(d, ids, scanningAbove: 1_024, sketches: sketches)
    }

    /// `flagFetched`, finding the later intakes by their bands when at most `scanningAbove`
    /// were sketched, else by one pass over the Datanet's signatures, and flagging a first fetch
    /// `slice` contributions a transaction (tests take every way).
    func flagFetched(_ d: DatanetID, _ ids: [RecordID], scanningAbove: Int, slice: Int = 8_192, sketches: [RecordID: TextSketch] = [:]) throws {
        guard let bands = minhashBands, !ids.isEmpty else { return }
        // Nothing to sketch (the usual case once a Datanet's content is here): no write at all.
        let unsketched = try env.read { txn in try ids.contains { try !txn.contains(minhashes, d.bytes + $0.bytes) } }
        guard unsketched else { return }
        // The first content of a Datanet to be sketched here (a whole Datanet fetched after a
        // records-only sync): no intake sketched before can be later than these, so they are
        // flagged in intake order a slice a transaction, each slice's flags final when it
        // commits (a cut call leaves the earliest sketched, and the next call goes on from
        // there), against an index of the band entries kept in memory.
        // Records are read and decoded once, here; each slice's transaction only checks that
        // its contributions are still unsketched and where they are taken in now.
        let slices = try env.read { txn -> [[NearDuplicateProbe]]? in
            guard try txn.lastKey(minhashes, prefix: d.bytes) == nil else { return nil }
            let order = try probes(txn, d, ids, sketches: sketches)
            return stride(from: 0, to: order.count, by: slice).map { Array(order[$0 ..< min(order.count, $0 + slice)]) }
        }
        guard let slices else {
            return try flagFetchedSlice(d, bands: bands, memo: nil, scanningAbove: scanningAbove) { txn in try probes(txn, d, ids, sketches: sketches) }
        }
        let memo = BandMemo(datanet: d)
        for slice in slices {
            try flagFetchedSlice(d, bands: bands, memo: memo, scanningAbove: scanningAbove) { txn in
                try Self.inIntakeOrder(slice.compactMap { p in
                    guard try !txn.contains(minhashes, d.bytes + p.id.bytes) else { return nil }
                    var now = p
                    now.intakeIndex = try intake(txn, d, p.id)
                    return now
                })
            }
        }
    }

    /// Intakes by index, then pending contributions by id.
    private static func inIntakeOrder(_ probes: [NearDuplicateProbe]) -> [NearDuplicateProbe] {
        probes.sorted { ($0.intakeIndex ?? .max, $0.id) < ($1.intakeIndex ?? .max, $1.id) }
    }

    /// The contributions of `d` among `ids` whose content is a blob and that are not sketched,
    /// in intake order (pending ones after, by id), with the sketches made ahead.
    private func probes(_ txn: Transaction, _ d: DatanetID, _ ids: [RecordID], sketches: [RecordID: TextSketch]) throws -> [NearDuplicateProbe] {
        var probes = [NearDuplicateProbe]()
        for id in Set(ids) {
            guard try !txn.contains(minhashes, d.bytes + id.bytes), let c = try contributionRecord(txn, id),
                  c.datanet == d, c.contentKind == .blob else { continue }
            probes.append(NearDuplicateProbe(id: id, contribution: c, intakeIndex: try intake(txn, d, id), sketch: sketches[id]))
        }
        return Self.inIntakeOrder(probes)
    }

    /// `flagFetched` for the contributions `probes` gives in one transaction.
    private func flagFetchedSlice(_ d: DatanetID, bands: Table, memo: BandMemo?, scanningAbove: Int,
                                  probes: (Transaction) throws -> [NearDuplicateProbe]) throws {
        var attempts = 0
        try env.write { txn in
            // Run again after the map grew: what the aborted attempt added to the memo may be
            // matched in count by another writer's entries meanwhile.
            attempts += 1
            if attempts > 1 { memo?.turnOff() }
            let probes = try probes(txn)
            var added = BandsAdded()
            try flagNearDuplicates(txn, probes, added: &added, memo: memo)
            // Slices of a first fetch, while no other writer has committed: no later intake
            // was sketched before these.
            if let memo, try memo.isActive(txn, bands) { return }
            // The intakes sketched just now (content not text, or still missing, is not).
            let sketched = try probes.filter { p in try p.intakeIndex != nil && txn.contains(minhashes, d.bytes + p.id.bytes) }
            guard let first = sketched.first?.intakeIndex else { return }
            let new = Set(sketched.map(\.id))
            var later = Set<RecordID>()
            if sketched.count <= scanningAbove {
                // Few new: the later intakes that share a band with one of them.
                for p in sketched {
                    guard let at = p.intakeIndex, let v = try txn.get(minhashes, d.bytes + p.id.bytes), v.count == MinHash.k * 8 else { continue }
                    var shared = Set<RecordID>()
                    try members(txn, bands, of: Self.bandKeys(d, Self.slots(v))) { _, other in
                        if !new.contains(other) && !later.contains(other) { shared.insert(other) }
                    }
                    for c in shared where try (intake(txn, d, c) ?? 0) > at { later.insert(c) }
                }
            } else {
                // Many new (a whole Datanet fetched): one pass over the signatures held before.
                try txn.scan(minhashes, from: d.bytes) { k, _ in
                    guard k.count == 64, k.starts(with: d.bytes), let id = RecordID(UnsafeRawBufferPointer(rebasing: k[32...])) else { return false }
                    if !new.contains(id), let at = try intake(txn, d, id), at > first { later.insert(id) }
                    return true
                }
            }
            for id in later.sorted() { try reflag(txn, bands, d, id) }
        }
    }

    /// The intake index of contribution `id` in `d`, nil when it is not taken in there.
    func intake(_ txn: Transaction, _ d: DatanetID, _ id: RecordID) throws -> UInt64? {
        guard let p = try index.placement(txn, id), p.datanet == d else { return nil }
        return p.index
    }

    /// Flags the sketched intake `id` afresh among every contribution sketched now that shares
    /// a band with it (`flag` keeps the earlier intakes and ranks them).
    private func reflag(_ txn: Transaction, _ bands: Table, _ d: DatanetID, _ id: RecordID) throws {
        guard let at = try intake(txn, d, id), let v = try txn.get(minhashes, d.bytes + id.bytes), v.count == MinHash.k * 8,
              let c = try contributionRecord(txn, id) else { return }
        let sig = Self.slots(v)
        var candidates = Set<RecordID>()
        try members(txn, bands, of: Self.bandKeys(d, sig)) { _, other in candidates.insert(other) }
        try flag(txn, NearDuplicateProbe(id: id, contribution: c, intakeIndex: at), sig, among: candidates, recording: false)
    }
}
