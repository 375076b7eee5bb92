import DatanetCrypto
import DatanetStore

/// What `datanet gc` freed (or would free).
public struct GarbageReport: Codable, Sendable {
    public var sweep: ObjectStore.Sweep
    /// Contributions under a tombstone whose content was dropped.
    public var tombstoned: Int
    public var dryRun: Bool
}

extension Ledger {
    /// Deletes every content object that nothing live reaches: live are the contents of
    /// contributions in a log here that are not under a tombstone, of pending proposals, and
    /// of what `add` added — unless that is the content of a tombstoned contribution, which
    /// honest replicas drop (its `roots` entry goes too). Refuses while an add is running.
    /// One transaction; `dryRun` only counts.
    public func collectGarbage(dryRun: Bool) throws -> GarbageReport {
        let all = try datanets()
        let tables = try all.map { try leavesTable($0.id, create: false) }
        return try env.write { txn in
            var live = Set<Digest>()
            var dead = Set<Digest>()
            var tombstoned = 0
            for (st, table) in zip(all, tables) {
                try txn.scan(table) { k, v in
                    guard let leaf = try? Leaf(encoded: Array(v)), leaf.kind == .intake,
                          case .contribution(let c)? = try? Record(leaf.envelope(4)) else { return true }
                    if try txn.contains(tombstones, Self.key(st.id, Self.u64(k))) {
                        dead.insert(c.content)
                        tombstoned += 1
                    } else {
                        try store.mark(c.content, kind: c.contentKind == .blob ? .blob : .tree, in: txn, into: &live)
                    }
                    return true
                }
                try txn.scan(pending, from: st.id.bytes) { k, v in
                    guard k.starts(with: st.id.bytes) else { return false }
                    if let b = try txn.get(records, Digest(v)!), case .contribution(let c)? = try? Record(Envelope(encoded: b)) {
                        try store.mark(c.content, kind: c.contentKind == .blob ? .blob : .tree, in: txn, into: &live)
                    }
                    return true
                }
            }
            let leases = try store.clearDeadLeases(in: txn, dryRun: dryRun)
            var dropRoots = Set<Digest>()
            for (kind, id) in try store.addedRoots(in: txn) {
                if dead.contains(id) && !live.contains(id) { dropRoots.insert(id) } else { try store.mark(id, kind: kind, in: txn, into: &live) }
            }
            var sweep = try store.sweep(keeping: live, dropRoots: dropRoots, in: txn, dryRun: dryRun)
            sweep.deadLeases = leases
            return GarbageReport(sweep: sweep, tombstoned: tombstoned, dryRun: dryRun)
        }
    }
}
