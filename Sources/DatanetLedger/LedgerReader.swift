import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// Read-only questions about a store's Datanet logs and their indexes: what `show`, `log`,
/// `pending`, `status` and the other read commands print. Each answer comes from one read
/// snapshot; none takes the writer lock or waits for a writer.
public struct LedgerReader: Sendable {
    let ledger: Ledger
}

extension Ledger {
    /// The read-only questions of this ledger.
    public var reader: LedgerReader { LedgerReader(ledger: self) }
}

extension LedgerReader {
    /// A record by id.
    public func record(_ id: RecordID) throws -> Envelope? {
        try ledger.env.read { txn in try txn.decoded(ledger.records, id.bytes, Envelope.init(encoded:)) }
    }

    /// The state of a Datanet this store follows.
    public func state(of d: DatanetID) throws -> DatanetState {
        try ledger.env.read { txn in try ledger.state(txn, d) }
    }

    /// Every Datanet this store has a log of.
    public func datanets() throws -> [DatanetState] {
        try ledger.env.read { txn in
            var out = [DatanetState]()
            try txn.scan(ledger.state) { k, v in out.append(try LogIndex.decode(ledger.state.name, Array(k), Array(v), DatanetState.init(encoded:))); return true }
            return out
        }
    }

    /// Resolves a Datanet by unique hex prefix of its id or by exact name.
    public func resolveDatanet(_ text: String) throws -> DatanetState {
        let all = try datanets()
        let lower = text.lowercased()
        let matches = all.filter { $0.id.hex.hasPrefix(lower) || $0.policy.name == text }
        guard !matches.isEmpty else { throw LedgerStateError.unknownDatanet(text) }
        guard matches.count == 1 else { throw LedgerStateError.ambiguousDatanet(text, matches: matches.count) }
        return matches[0]
    }

    /// Pending records of a Datanet, in the order this node first saw them.
    public func pendingRecords(_ d: DatanetID) throws -> [Envelope] {
        try ledger.env.read { txn in
            var out = [Envelope]()
            try txn.scanNumbered(ledger.pending, d) { n, v in
                let key = BigEndian.key(d, n)
                if let e = try ledger.pendingRecord(txn, v, key: key).1 { out.append(try LogIndex.decode(ledger.pending.name, key, e, Envelope.init(encoded:))) }
                return true
            }
            return out
        }
    }

    /// Contributions taken into the log and not yet decided (what curators have to review),
    /// in intake order.
    public func undecidedContributions(_ d: DatanetID) throws -> [(intake: UInt64, id: RecordID)] {
        try ledger.env.read { txn in
            var out = [(intake: UInt64, id: RecordID)]()
            try txn.scanNumbered(ledger.undecided, d) { intake, v in
                out.append((intake, try ledger.index.undecided(v, d, intake).contribution))
                return true
            }
            return out
        }
    }

    /// Leaves from index `from` on.
    public func leaves(_ d: DatanetID, from: UInt64 = 0) throws -> [(index: UInt64, leaf: Leaf)] {
        var out = [(index: UInt64, leaf: Leaf)]()
        try forEachLeaf(d, from: from) { out.append(($0, $1)); return true }
        return out
    }

    /// Calls `body` with each leaf from index `from` on, in one read transaction, until it
    /// returns false: listings stream without holding the log in memory.
    public func forEachLeaf(_ d: DatanetID, from: UInt64 = 0, _ body: (UInt64, Leaf) throws -> Bool) throws {
        let table = try ledger.leafTable(d)
        try ledger.env.read { txn in
            try table.scan(txn, from: from) { i, v in try body(i, try table.decode(i, Array(v))) }
        }
    }

    /// The newest signed checkpoint of a Datanet, if any.
    public func latestCheckpoint(_ d: DatanetID) throws -> String? {
        try ledger.env.read { txn in try ledger.latestCheckpointNote(txn, d) }
    }

    /// Every checkpoint this node signed for a Datanet, oldest first.
    public func checkpoints(_ d: DatanetID) throws -> [(size: UInt64, note: String)] {
        try ledger.env.read { txn in
            var out = [(UInt64, String)]()
            try txn.scanNumbered(ledger.checkpoints, d) { size, v in
                out.append((size, String(decoding: v, as: UTF8.self)))
                return true
            }
            return out
        }
    }

    /// The intake promise the sequencer gave for a contribution, if any.
    public func promise(_ record: RecordID) throws -> IntakePromise? {
        try ledger.env.read { txn in try txn.decoded(ledger.promises, record.bytes, IntakePromise.init(encoded:)) }
    }

    /// Where a record sits in its log: (Datanet, leaf index of its intake or policy leaf).
    public func placement(_ record: RecordID) throws -> (DatanetID, UInt64)? {
        try ledger.env.read { txn in try ledger.index.placement(txn, record).map { ($0.datanet, $0.index) } }
    }

    /// The decision leaf index of a contribution, if decided.
    public func decision(_ contribution: RecordID) throws -> UInt64? {
        try ledger.env.read { txn in try ledger.decision(txn, contribution) }
    }

    /// The review records that decided a decision leaf of `d`: carried in it (older logs) or
    /// in the review leaves it cites.
    public func reviews(of decision: Leaf.Decision, in d: DatanetID) throws -> [Envelope] {
        switch decision.reviews {
        case .embedded(let e): return e
        case .cited(let indexes):
            let table = try ledger.leafTable(d)
            return try ledger.env.read { txn in
                try indexes.map { i in
                    guard let e = try table.leaf(txn, i)?.review else { throw LedgerError.corruptLog("leaf \(i), cited as a review, is not a review leaf") }
                    return e
                }
            }
        }
    }

    /// The tombstone leaf index of a contribution, if it was withdrawn or taken down.
    public func tombstone(_ contribution: RecordID) throws -> UInt64? {
        try ledger.env.read { txn in try ledger.tombstone(txn, contribution) }
    }

    /// The content every contribution of every Datanet here names (taken in or queued), with
    /// the size its record claims: what `fsck` and `stat` count besides what was added.
    public func contributionContents() throws -> [ObjectID: UInt64] {
        var out = [ObjectID: UInt64]()
        for st in try datanets() {
            try forEachLeaf(st.id) { _, leaf in
                if let i = leaf.intake, let c = try? Contribution(body: i.contribution.body) { out[c.content] = c.size }
                return true
            }
            for e in try pendingRecords(st.id) {
                if case .contribution(let c)? = try? Record(e) { out[c.content] = c.size }
            }
        }
        return out
    }

    /// An author's contributions taken into `d` and not yet decided: (count, bytes), what the
    /// per-author quota counts.
    public func quota(_ d: DatanetID, author: PublicKey) throws -> (count: UInt64, bytes: UInt64) {
        let q = try ledger.env.read { txn in try ledger.index.quota(txn, d, author: KeyID(author)) }
        return (q.count, q.bytes)
    }

    /// The contributions whose content is `content`: in each Datanet, the earliest one taken
    /// in, and those queued here.
    public func contributions(withContent content: ObjectID) throws -> [RecordID] {
        var out = [RecordID]()
        for st in try datanets() {
            if let taken = try ledger.env.read({ txn in try txn.get(ledger.contents, st.id.bytes + content.bytes).flatMap { RecordID(bytes: $0) } }) {
                out.append(taken)
            }
            for e in try pendingRecords(st.id) where !out.contains(e.id) {
                if case .contribution(let c)? = try? Record(e), c.content == content { out.append(e.id) }
            }
        }
        return out
    }

    /// Ids of stored records starting with a hex prefix (at most two are returned).
    public func recordIDs(prefix text: String) throws -> [RecordID] {
        let lower = text.lowercased()
        guard !lower.isEmpty, lower.utf8.count <= 64, lower.utf8.allSatisfy({ Hex.nibble($0) != nil }) else {
            throw StoreError.badId(text)
        }
        var start = Hex.decode(String(lower.prefix(lower.utf8.count & ~1))) ?? []
        if lower.utf8.count % 2 == 1 { start.append(Hex.nibble(lower.utf8.last!)! << 4) }
        var out = [RecordID]()
        try ledger.env.read { txn in
            try txn.scan(ledger.records, from: start) { k, _ in
                guard let d = RecordID(k), d.hex.hasPrefix(lower) else { return false }
                out.append(d)
                return out.count < 2
            }
        }
        return out
    }

    /// The earlier contribution a contribution resembles, if it was flagged.
    public func nearDuplicate(of id: RecordID) throws -> RecordID? {
        try ledger.env.read { txn in try txn.get(ledger.nearDuplicates, id).flatMap { RecordID(bytes: $0) } }
    }

    /// What `pending` and `show` say of a contribution's likeness to an earlier one: an exact
    /// duplicate (the same content id as a contribution taken in earlier, or as the one its
    /// MinHash flag names; rejected at intake), or a near-duplicate (MinHash).
    public func duplicateFlag(of id: RecordID) throws -> (earlier: RecordID, exact: Bool)? {
        try ledger.env.read { txn in
            guard let bytes = try txn.get(ledger.records, id), case .contribution(let c)? = try? Record(Envelope(encoded: bytes)) else { return nil }
            return try duplicateFlag(txn, id, c)
        }
    }

    /// `duplicateFlag` of many contributions, given with their records, in one read transaction.
    public func duplicateFlags(_ items: [(id: RecordID, contribution: Contribution)]) throws -> [(earlier: RecordID, exact: Bool)?] {
        try ledger.env.read { txn in try items.map { try duplicateFlag(txn, $0.id, $0.contribution) } }
    }

    private func duplicateFlag(_ txn: Transaction, _ id: RecordID, _ c: Contribution) throws -> (earlier: RecordID, exact: Bool)? {
        if let earliest = try ledger.index.earliest(txn, c.datanet, content: c.content), earliest != id {
            return (earliest, true)
        }
        guard let near = try txn.get(ledger.nearDuplicates, id).flatMap(RecordID.init(bytes:)) else { return nil }
        let other = try txn.get(ledger.records, near).flatMap { try? Record(Envelope(encoded: $0)) }
        if case .contribution(let o)? = other, o.content == c.content { return (near, true) }
        return (near, false)
    }

    /// The sidecar a contribution names, if this store holds it (not erased, not withheld).
    public func sidecar(of c: Contribution) throws -> Sidecar? {
        try ledger.env.read { txn in try txn.get(ledger.sidecars, c.sidecar) }.flatMap { try? Sidecar(encoded: $0) }
    }


    /// The fork evidence held for a Datanet (its own and received in bundles), by size.
    public func forkEvidence(_ d: DatanetID) throws -> [ForkEvidence] {
        try ledger.env.read { txn in
            var out = [ForkEvidence]()
            try txn.scan(ledger.forks, from: d.bytes) { k, v in
                guard k.starts(with: d.bytes) else { return false }
                if let e = try? JSONDecoder().decode(ForkEvidence.self, from: Data(v)) { out.append(e) }
                return true
            }
            return out
        }
    }

    /// The contributions accepted at a checkpoint size (the newest when nil). A tombstone at
    /// any index this store holds, before or after that size, moves a contribution from
    /// `items` to `withdrawn`: nothing under a tombstone is ever exported again.
    public func accepted(_ d: DatanetID, at size: UInt64?) throws -> AcceptedContributions {
        let (note, end) = try checkpoint(d, at: size)
        guard let rows = try contributionRows(d, below: end) else { return try acceptedFromLeaves(d, note: note, end: end) }
        var result = AcceptedContributions(note: note, items: [], withdrawn: [])
        for r in rows where r.isAccepted(below: end) {
            if let t = r.tombstone { result.withdrawn.append((r.intake, r.id, r.contribution, t)) }
            else { result.items.append((r.intake, r.id, r.contribution)) }
        }
        return result
    }

    /// The signed note of `d`'s checkpoint at `size` (the newest when nil), and its size.
    public func checkpoint(_ d: DatanetID, at size: UInt64?) throws -> (note: String, size: UInt64) {
        let note: String = try ledger.env.read { txn in
            if let size {
                guard let b = try txn.get(ledger.checkpoints, BigEndian.key(d, size)) else {
                    throw LedgerStateError.noCheckpoint(datanet: d.hex, size: size)
                }
                return String(decoding: b, as: UTF8.self)
            }
            guard let n = try ledger.latestCheckpointNote(txn, d) else { throw LedgerStateError.noCheckpoint(datanet: d.hex, size: nil) }
            return n
        }
        return (note, try Checkpoint.unverified(note: note).size)
    }

    /// `accepted` in a store without rows: from the leaves below `end`.
    func acceptedFromLeaves(_ d: DatanetID, note: String, end: UInt64) throws -> AcceptedContributions {
        // Intakes in log order, found again by binary search on the index their decision names.
        var intakes = [(index: UInt64, id: RecordID, contribution: Contribution, accepted: Bool)]()
        intakes.reserveCapacity(Int(min(end / 2 + 16, 1 << 22)))
        func accept(_ d: Leaf.Decision) {
            if d.accepted, let k = intakes.position(of: d.intake, by: \.index) { intakes[k].accepted = true }
        }
        try forEachLeafSummary(d, to: end) { i, summary in
            switch summary {
            case .intake(_, let record, let c): intakes.append((i, record, c, false))
            case .decision(let d): accept(d)
            case .other(let leaf): if let d = leaf.decision { accept(d) }
            }
            return true
        }
        return try ledger.env.read { txn in
            var result = AcceptedContributions(note: note, items: [], withdrawn: [])
            for x in intakes where x.accepted {
                if let t = try ledger.index.number(txn, ledger.tombstones, d, x.index) {
                    result.withdrawn.append((x.index, x.id, x.contribution, t))
                } else {
                    result.items.append((x.index, x.id, x.contribution))
                }
            }
            return result
        }
    }
}
