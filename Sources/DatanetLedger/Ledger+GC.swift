import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What `datanet gc` freed (or would free).
public struct GarbageReport: Codable, Sendable {
    public var sweep: ObjectStore.Sweep
    /// Contributions under a tombstone whose content was dropped.
    public var tombstoned: Int
    /// Sidecars no live contribution names, deleted (or counted).
    public var sidecars: Int
    public var dryRun: Bool
}

extension Ledger {
    /// Deletes every content object and sidecar that nothing live reaches (schema/log.md
    /// "Tombstones"). Content is kept when a live contribution names it: accepted or undecided
    /// and not under a tombstone, in any Datanet here, or a pending proposal (unless the
    /// earliest contribution of that content in its Datanet is under a tombstone). Content
    /// that only rejected contributions or `add` name is kept too, unless a tombstone names it:
    /// a takedown removes those copies (an added root's entry goes with it). Sidecars are kept
    /// only for contributions not under a tombstone and pending proposals. A model's artifact
    /// (registered or pending) is kept like an accepted contribution's content, unless a
    /// tombstone erased that content in its Datanet. Added roots in `releasing` (span shards replaced:
    /// schema/spans.md) lose their entry and are kept only if something else reaches them.
    /// Refuses while an add is running. One transaction; `dryRun` only counts.
    public func collectGarbage(dryRun: Bool, releasing: Set<ObjectID> = []) throws -> GarbageReport {
        let all = try reader.datanets()
        let tables = try all.map { try leafTable($0.id) }
        return try env.write { txn in
            var strong = [(ObjectKind, ObjectID)](), weak = [(ObjectKind, ObjectID)]()
            var dead = Set<ObjectID>(), liveSidecars = Set<Digest>()
            var tombstoned = 0
            func kind(_ c: Contribution) -> ObjectKind { c.contentKind == .blob ? .blob : .tree }
            for (st, table) in zip(all, tables) {
                var intakes = [(UInt64, Contribution)]()
                var rejected = Set<UInt64>()
                var artifacts = [ObjectID]()
                try table.scan(txn) { k, v in
                    guard let leaf = try? Leaf(encoded: Array(v)) else { return true }
                    if let d = leaf.decision, !d.accepted { rejected.insert(d.intake) }
                    if let m = leaf.model?.record, case .model(let r)? = try? Record(m) { artifacts.append(r.artifact) }
                    if let i = leaf.intake, case .contribution(let c)? = try? Record(i.contribution) { intakes.append((k, c)) }
                    return true
                }
                for (i, c) in intakes {
                    if try txn.contains(tombstones, BigEndian.key(st.id, i)) {
                        dead.insert(c.content)
                        tombstoned += 1
                    } else {
                        liveSidecars.insert(c.sidecar)
                        if rejected.contains(i) { weak.append((kind(c), c.content)) } else { strong.append((kind(c), c.content)) }
                    }
                }
                try txn.scanNumbered(pending, st.id) { n, v in
                    guard let b = try pendingRecord(txn, v, key: BigEndian.key(st.id, n)).1 else { return true }
                    switch try? Record(Envelope(encoded: b)) {
                    case .contribution(let c)?:
                        liveSidecars.insert(c.sidecar)
                        if try isErased(txn, st.id, content: c.content) { weak.append((kind(c), c.content)) } else { strong.append((kind(c), c.content)) }
                    case .model(let r)?: artifacts.append(r.artifact)
                    default: break
                    }
                    return true
                }
                for a in artifacts where try !isErased(txn, st.id, content: a) { strong.append((.blob, a)) }
            }
            let leases = try store.clearDeadLeases(in: txn, dryRun: dryRun)
            let added = try store.addedRoots(in: txn)
            let dropRoots = Set(added.map(\.1).filter { dead.contains($0) || releasing.contains($0) })
            var live = Set<ObjectID>()
            for (kind, id) in strong { try store.mark(id, kind: kind, in: txn, into: &live) }
            for (kind, id) in weak + added where !dead.contains(id) && !releasing.contains(id) { try store.mark(id, kind: kind, in: txn, into: &live) }
            var sweep = try store.sweep(keeping: live, dropRoots: dropRoots, in: txn, dryRun: dryRun)
            sweep.deadLeases = leases
            var doomedSidecars = [Digest]()
            try txn.scan(sidecars) { k, _ in
                if let h = Digest(k), !liveSidecars.contains(h) { doomedSidecars.append(h) }
                return true
            }
            if !dryRun { for h in doomedSidecars { try txn.delete(sidecars, h) } }
            return GarbageReport(sweep: sweep, tombstoned: tombstoned, sidecars: doomedSidecars.count, dryRun: dryRun)
        }
    }
}
