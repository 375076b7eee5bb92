import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// The tables derived from a Datanet's log alone: two stores holding the same log hold the
/// same entries in each, however the leaves arrived (sequenced here, imported by bundle, next
/// synced). Everything else a ledger keeps (pending records, intake promises, near-duplicate
/// flags, MinHash signatures, observed checkpoints and fork evidence, pins, object roots) is
/// this node's own and may differ.
public enum LogTable: String, CaseIterable, Sendable {
    case leaves = "log-leaves", nodes = "log-nodes", checkpoints, state
    /// Record id → Datanet ‖ leaf index, for records a leaf places (intake, policy kinds, tombstone).
    case placed
    case undecided, decided, contents, tombstones
    /// Datanet ‖ author → undecided count ‖ bytes (kept in `ledger-meta`).
    case quotas
    /// Erasure records and sidecar owners (Erasures.swift).
    case erasures
    /// Every record a leaf carries, by id.
    case records
}

extension Ledger {
    /// Every entry of Datanet `d` in each log-derived table, as (key, value) in key order.
    package func logTables(_ txn: Transaction, _ d: Digest) throws -> [LogTable: [([UInt8], [UInt8])]] {
        var out = [LogTable: [([UInt8], [UInt8])]]()
        func prefixed(_ t: Table, _ prefix: [UInt8], width: Int? = nil) throws -> [([UInt8], [UInt8])] {
            var entries = [([UInt8], [UInt8])]()
            try txn.scan(t, from: prefix) { k, v in
                guard k.starts(with: prefix) else { return false }
                if width == nil || k.count == width { entries.append((Array(k), Array(v))) }
                return true
            }
            return entries
        }
        let table = try leafTable(d)
        var leaves = [([UInt8], [UInt8])]()
        var carried = Set<Digest>()
        try table.scan(txn) { i, v in
            leaves.append((BigEndian.bytes(i), Array(v)))
            if let leaf = try? Leaf(encoded: Array(v)) { for e in leaf.records { carried.insert(e.id) } }
            return true
        }
        out[.leaves] = leaves
        out[.nodes] = try sharedLog.map { try prefixed($0.nodes, d.bytes) } ?? []
        out[.checkpoints] = try prefixed(checkpoints, d.bytes)
        out[.state] = try txn.get(state, d).map { [(d.bytes, $0)] } ?? []
        var placements = [([UInt8], [UInt8])]()
        try txn.scan(placed) { k, v in
            if v.starts(with: d.bytes) { placements.append((Array(k), Array(v))) }
            return true
        }
        out[.placed] = placements
        out[.undecided] = try prefixed(undecided, d.bytes)
        out[.decided] = try prefixed(decided, d.bytes)
        out[.contents] = try prefixed(contents, d.bytes)
        out[.tombstones] = try prefixed(tombstones, d.bytes)
        out[.quotas] = try prefixed(meta, d.bytes, width: 64)
        out[.erasures] = try erasures.map { e in try [0x01, 0x03, 0x04].flatMap { try prefixed(e, [$0] + d.bytes) } } ?? []
        out[.records] = try carried.sorted().map { id in (id.bytes, try txn.get(records, id) ?? []) }
        return out
    }
}
