import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What tombstones erased, kept for good: gc never removes it, so a tombstone binds every
/// later import (and sync) of its Datanet even after the content and sidecar are gone
/// (schema/log.md "Tombstones"). Table `erasures`, three key shapes:
///
///     0x01 ‖ Datanet ‖ contribution   → content ‖ sidecar hash ‖ u64 tombstone leaf index
///     0x03 ‖ Datanet ‖ sidecar hash   → contribution            (the sidecar is erased there)
///     0x04 ‖ Datanet ‖ sidecar hash   → contribution            (its owner: the earliest intake naming it)
///
/// An honest sidecar is salted, so its hash is one contribution's; but every hash is public in
/// its record, so another record can name it. Only the owner's tombstone erases a sidecar: a
/// copy withdrawn cannot erase its victim's label, and a copy made later in the same Datanet
/// cannot bring an erased one back. A content id is erased only in the Datanet whose earliest
/// contribution of it is under a tombstone (every later copy there is an exact duplicate,
/// rejected at intake); an earlier live contribution of the same content, or one in another
/// Datanet, keeps it storable.
extension Ledger {
    static let erasuresFilled = Array("erasures-v1".utf8)

    /// Records that contribution `id` of `d` (content, sidecar) is under the tombstone at `leaf`;
    /// returns whether its sidecar is erased with it (it owns the sidecar's hash in `d`).
    @discardableResult
    func recordErasure(_ txn: Transaction, _ d: DatanetID, _ id: RecordID, _ c: Contribution, leaf: UInt64) throws -> Bool {
        guard let erasures else { return false }
        try txn.put(erasures, [0x01] + d.bytes + id.bytes, c.content.bytes + c.sidecar.bytes + BigEndian.bytes(leaf))
        guard try sidecarOwner(txn, d, c.sidecar) == id else { return false }
        try txn.put(erasures, [0x03] + d.bytes + c.sidecar.bytes, id.bytes)
        return true
    }

    /// Makes contribution `id` the owner of its sidecar hash in `d` unless an earlier intake is
    /// (called at every intake, in log order).
    func claimSidecar(_ txn: Transaction, _ d: DatanetID, _ sidecar: Digest, _ id: RecordID) throws {
        guard let erasures else { return }
        _ = try txn.putNew(erasures, [0x04] + d.bytes + sidecar.bytes, size: 32) { out in
            id.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }

    /// The contribution owning a sidecar hash in `d`: the earliest intake naming it.
    func sidecarOwner(_ txn: Transaction, _ d: DatanetID, _ sidecar: Digest) throws -> RecordID? {
        guard let erasures else { return nil }
        return try txn.withValue(erasures, [0x04] + d.bytes + sidecar.bytes) { RecordID($0) } ?? nil
    }

    /// Whether any tombstone has erased anything in this store: when none has, the lookups
    /// below can be skipped (an import's hot path).
    func anyErasures(_ txn: Transaction) throws -> Bool {
        var any = false
        try txn.scan(erasures ?? tombstones) { _, _ in any = true; return false }
        return any
    }

    /// Whether contribution `id` of `d` is under a tombstone.
    func isErased(_ txn: Transaction, _ d: DatanetID, contribution id: RecordID) throws -> Bool {
        guard let erasures else { return try tombstone(txn, id) != nil }
        return try txn.contains(erasures, [0x01] + d.bytes + id.bytes)
    }

    /// Whether this content is erased in `d`: the earliest contribution of it there (the
    /// `contents` index) is under a tombstone.
    func isErased(_ txn: Transaction, _ d: DatanetID, content: ObjectID) throws -> Bool {
        guard let earliest = try index.earliest(txn, d, content: content) else { return false }
        return try isErased(txn, d, contribution: earliest)
    }

    /// Whether its owner's tombstone erased the sidecar with this hash in `d`.
    func isErased(_ txn: Transaction, _ d: DatanetID, sidecar: Digest) throws -> Bool {
        guard let erasures else { return false }
        return try txn.contains(erasures, [0x03] + d.bytes + sidecar.bytes)
    }

    /// Stores made before this table: records every sidecar's owner (intake order) and every
    /// existing tombstone once, on the first writable open (the tombstone leaf names the
    /// contribution; the record gives its content and sidecar).
    func fillErasures() throws {
        guard erasures != nil, try !env.read({ txn in try txn.contains(meta, Self.erasuresFilled) }) else { return }
        let all = try reader.datanets()
        let tables = try all.map { try leafTable($0.id) }
        try env.write { txn in
            guard try !txn.contains(meta, Self.erasuresFilled) else { return }
            for (st, table) in zip(all, tables) {
                try table.scan(txn) { _, v in
                    if let e = (try? Leaf(encoded: Array(v)))?.intake?.contribution,
                       case .contribution(let c)? = try? Record(e) { try claimSidecar(txn, st.id, c.sidecar, e.id) }
                    return true
                }
                var found = [(UInt64, UInt64)]()
                try txn.scanNumbered(tombstones, st.id) { intake, v in
                    try LogIndex.check(v, 8, tombstones.name, BigEndian.key(st.id, intake))
                    found.append((intake, BigEndian.u64(v)))
                    return true
                }
                for (intake, leafIndex) in found {
                    guard let bytes = try table.get(txn, intake), let e = (try? Leaf(encoded: bytes))?.intake?.contribution, case .contribution(let c)? = try? Record(e) else { continue }
                    try recordErasure(txn, st.id, e.id, c, leaf: leafIndex)
                }
            }
            try txn.put(meta, Self.erasuresFilled, [UInt8(1)])
        }
    }
}
