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
    /// One row per contribution taken in, with its outcome (ContributionRows.swift).
    case contributionRows = "contribution-rows"
}

extension Ledger {
    /// Every entry of Datanet `d` in each log-derived table, as (key, value) in key order.
    package func logTables(_ txn: Transaction, _ d: DatanetID) throws -> [LogTable: [([UInt8], [UInt8])]] {
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
        var carried = Set<RecordID>()
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
        out[.contributionRows] = try contributionRows.map { try prefixed($0, d.bytes) } ?? []
        out[.records] = try carried.sorted().map { id in (id.bytes, try txn.get(records, id) ?? []) }
        return out
    }
}

/// What fsck's ledger pass found in one Datanet.
public struct LogTableCheck: Sendable {
    public let datanet: DatanetID
    public var leaves: UInt64 = 0
    /// One line per damaged table, naming it and the first key that differs.
    public var problems = [String]()
}

extension Ledger {
    /// Leaves replayed per `LogIndex.apply` call while rebuilding.
    static let rebuildBatch = 10_000

    /// fsck's ledger pass: for each Datanet, its index tables are rebuilt from its leaves by the
    /// one apply path every writer uses and compared with the stored ones, and the Merkle root
    /// recomputed from the leaves is compared with every stored checkpoint's. The rebuild runs
    /// in a write transaction that is always aborted (LMDB keeps its pages in memory), so the
    /// store is never changed; it waits for, and briefly holds, the writer lock.
    public func checkLogTables(progress: ((UInt64) -> Void)? = nil) throws -> [LogTableCheck] {
        var checks = [LogTableCheck]()
        var done: UInt64 = 0
        for st in try reader.datanets() {
            var check = LogTableCheck(datanet: st.id)
            do {
                try env.write { txn in
                    check = try rebuildAndCompare(txn, st.id) { done += 1; progress?(done) }
                    throw Rollback()
                }
            } catch is Rollback {}
            checks.append(check)
        }
        return checks
    }

    private struct Rollback: Error {}

    private func rebuildAndCompare(_ txn: Transaction, _ d: DatanetID, tick: () -> Void) throws -> LogTableCheck {
        var check = LogTableCheck(datanet: d)
        let stored = try logTables(txn, d)
        // Clear what the index derives (records stay: a placed record is never rewritten).
        for (t, table) in [(LogTable.undecided, undecided), (.decided, decided), (.contents, contents), (.tombstones, tombstones), (.quotas, meta)] {
            for (k, _) in stored[t] ?? [] { try txn.delete(table, k) }
        }
        for (k, _) in stored[.placed] ?? [] { try txn.delete(placed, k) }
        if let erasures { for (k, _) in stored[.erasures] ?? [] { try txn.delete(erasures, k) } }
        if let contributionRows { for (k, _) in stored[.contributionRows] ?? [] { try txn.delete(contributionRows, k) } }
        // Replay every leaf through the apply path.
        let table = try leafTable(d)
        var effects = [LeafEffect]()
        var first: UInt64 = 0
        var hashes = [Digest]()
        var bad: String?
        // Leaves are replayed as the scan reads them (only the index tables are written meanwhile).
        try table.scan(txn) { i, v in
            guard i == UInt64(hashes.count) else { bad = "leaf \(hashes.count) is missing (next stored is \(i))"; return false }
            let bytes = Array(v)
            hashes.append(Merkle.leafHash(bytes))
            let effect: LeafEffect?
            do {
                let leaf = try Leaf(encoded: bytes)
                effect = LeafEffect(leaf, records: try leaf.records.map { ($0, try Record($0)) })
            } catch { bad = "leaf \(i) does not decode: \(error)"; return false }
            guard let effect else { bad = "leaf \(i) carries a record of the wrong kind"; return false }
            effects.append(effect)
            tick()
            if effects.count == Self.rebuildBatch {
                try index.apply(txn, d, first: first, recordsHeld: true, effects)
                first += UInt64(effects.count)
                effects.removeAll(keepingCapacity: true)
            }
            return true
        }
        check.leaves = UInt64(hashes.count)
        if let bad { check.problems.append("log-leaves: \(bad)"); return check }
        try index.apply(txn, d, first: first, recordsHeld: true, effects)
        let rebuilt = try logTables(txn, d)
        for t in [LogTable.placed, .undecided, .decided, .contents, .tombstones, .quotas, .erasures, .contributionRows] {
            if let problem = Self.difference(stored[t] ?? [], rebuilt[t] ?? []) {
                check.problems.append("\(t.rawValue): \(problem) (compared with a replay of the leaves)")
            }
        }
        // Records a leaf carries must be stored, and must be those records.
        for (k, v) in rebuilt[.records] ?? [] where (try? Envelope(encoded: v))?.id.bytes != k {
            check.problems.append("records: \(Hex.encode(k)) is missing or damaged")
            break
        }
        // Every stored Merkle node is the hash the leaves give it (post-order, MerkleLog.swift).
        var expected = [Digest](), stack = [(level: Int, hash: Digest)]()
        expected.reserveCapacity(2 * hashes.count)
        for h in hashes {
            expected.append(h)
            stack.append((0, h))
            while stack.count > 1, stack[stack.count - 2].level == stack[stack.count - 1].level {
                let right = stack.removeLast(), left = stack.removeLast()
                let parent = Merkle.nodeHash(left.hash, right.hash)
                expected.append(parent)
                stack.append((left.level + 1, parent))
            }
        }
        let nodes = stored[.nodes] ?? []
        if nodes.count != expected.count && sharedLog != nil {
            check.problems.append("log-nodes: \(nodes.count) nodes stored, \(expected.count) for \(hashes.count) leaves")
        } else if let k = zip(nodes, expected).first(where: { $0.0.1 != $0.1.bytes })?.0.0 {
            check.problems.append("log-nodes: the node at key \(Hex.encode(k)) is not the hash of the leaves under it")
        }
        // The checkpoints and state agree with the leaves.
        let log = try merkleLog(d)
        for (k, note) in stored[.checkpoints] ?? [] {
            guard k.count == 40, let cp = try? Checkpoint.unverified(note: String(decoding: note, as: UTF8.self)), cp.size == BigEndian.u64(k, at: 32) else {
                check.problems.append("checkpoints: the entry at key \(Hex.encode(k)) is damaged"); continue
            }
            guard cp.size <= hashes.count else { check.problems.append("checkpoints: size \(cp.size) is beyond the \(hashes.count) leaves held"); continue }
            let root = Merkle.root(leafHashes: Array(hashes[0..<Int(cp.size)]))
            if root != cp.root { check.problems.append("checkpoints: the root at size \(cp.size) is not the root of the stored leaves") }
            if (try? log.root(txn, size: cp.size)) != root { check.problems.append("log-nodes: the stored nodes give another root at size \(cp.size)") }
        }
        if let st = try? state(txn, d), st.size != UInt64(hashes.count) {
            check.problems.append("state: says \(st.size) leaves, \(hashes.count) are stored")
        }
        return check
    }

    /// A one-line account of how two key-ordered entry lists differ, or nil if they do not.
    static func difference(_ stored: [([UInt8], [UInt8])], _ rebuilt: [([UInt8], [UInt8])]) -> String? {
        let a = Dictionary(stored, uniquingKeysWith: { x, _ in x }), b = Dictionary(rebuilt, uniquingKeysWith: { x, _ in x })
        let missing = b.keys.filter { a[$0] == nil }, extra = a.keys.filter { b[$0] == nil }
        let differ = a.keys.filter { b[$0] != nil && b[$0] != a[$0] }
        guard !missing.isEmpty || !extra.isEmpty || !differ.isEmpty else { return nil }
        let first = (differ + missing + extra).min { $0.lexicographicallyPrecedes($1) }!
        return "\(missing.count) missing, \(extra.count) extra, \(differ.count) differing entries (first at key \(Hex.encode(first)))"
    }
}
