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
    /// contributions in a log here, of pending proposals, and of what `add` added. The content
    /// of a tombstoned contribution is dropped whoever else names it — a rejected exact copy,
    /// an added root (whose entry goes too) — since a takedown must remove every copy; only its
    /// parts that another live folder or file also holds stay. Refuses while an add is running.
    /// One transaction; `dryRun` only counts.
    public func collectGarbage(dryRun: Bool) throws -> GarbageReport {
        let all = try datanets()
        let tables = try all.map { try leavesTable($0.id, create: false) }
        return try env.write { txn in
            var roots = [(ObjectKind, Digest)]()
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
                        roots.append((c.contentKind == .blob ? .blob : .tree, c.content))
                    }
                    return true
                }
                try txn.scan(pending, from: st.id.bytes) { k, v in
                    guard k.starts(with: st.id.bytes) else { return false }
                    if let b = try pendingRecord(txn, v).1, case .contribution(let c)? = try? Record(Envelope(encoded: b)) {
                        roots.append((c.contentKind == .blob ? .blob : .tree, c.content))
                    }
                    return true
                }
            }
            let leases = try store.clearDeadLeases(in: txn, dryRun: dryRun)
            let added = try store.addedRoots(in: txn)
            let dropRoots = Set(added.map(\.1).filter { dead.contains($0) })
            var live = Set<Digest>()
            for (kind, id) in roots + added where !dead.contains(id) { try store.mark(id, kind: kind, in: txn, into: &live) }
            var sweep = try store.sweep(keeping: live, dropRoots: dropRoots, in: txn, dryRun: dryRun)
            sweep.deadLeases = leases
            return GarbageReport(sweep: sweep, tombstoned: tombstoned, dryRun: dryRun)
        }
    }
}
