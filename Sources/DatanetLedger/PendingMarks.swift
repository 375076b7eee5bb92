import DatanetCrypto
import DatanetObjects
import DatanetRecords

/// A pending record as two stores compare theirs before sync sends any (schema/protocol.md):
/// its id and which keys have signed it. A peer holding a record with the same mark needs
/// nothing of it; one holding the id with other signers is sent it again, and bundle import
/// merges the signatures, so a quorum gathered in different stores comes together.
public struct PendingMark: Hashable, Sendable {
    public let id: RecordID
    /// The first 8 bytes, big-endian, of SHA-256 over the signers' keys in the envelope's
    /// order (sorted by key). Ed25519 signing is deterministic, so equal signer sets mean equal
    /// signatures.
    public let signers: UInt64

    public init(id: RecordID, signers: UInt64) { (self.id, self.signers) = (id, signers) }

    /// The mark of a record as held here.
    public init(_ e: Envelope) {
        var keys = [UInt8]()
        keys.reserveCapacity(32 * e.signatures.count)
        for s in e.signatures { s.key.withUnsafeBytes { keys.append(contentsOf: $0) } }
        self.init(id: e.id, signers: BigEndian.u64(SHA256.hash(keys).bytes, at: 0))
    }
}

extension RecordKind {
    /// Whether a pending record of this kind may gather signatures from several keys (a
    /// curator quorum on a policy change, a handoff, a continuation or a takedown): sync
    /// compares these by mark, since reconciliation compares ids only.
    public var gathersSignatures: Bool { self != .contribution && self != .review }
}

/// Which pending records a bundle carries (sync, schema/protocol.md): those named in `wanted`,
/// and those that gather signatures unless the receiver holds them as `held` marks them.
/// With `all`, every pending record (for a receiver that holds none).
public struct PendingSelection: Sendable {
    public var wanted: Set<RecordID>
    public var held: Set<PendingMark>
    public var all: Bool

    public init(wanted: Set<RecordID> = [], held: Set<PendingMark> = [], all: Bool = false) { (self.wanted, self.held, self.all) = (wanted, held, all) }

    func includes(_ e: Envelope) -> Bool {
        all || wanted.contains(e.id) || (e.kind.gathersSignatures && !held.contains(PendingMark(e)))
    }
}

extension LedgerReader {
    /// Where this store's queue stands: every record queued from now on, in any Datanet, gets
    /// a position at or past it (the pending table's next sequence number).
    public func queuePosition() throws -> UInt64 {
        try ledger.env.read { txn in
            try txn.withValue(ledger.meta, Ledger.pendingSequenceKey) { v -> UInt64 in
                try LogIndex.check(v, 8, ledger.meta.name, Ledger.pendingSequenceKey)
                return BigEndian.u64(v)
            } ?? 0
        }
    }

    /// How many of `d`'s records pending here were queued at or past `position`.
    public func queued(_ d: DatanetID, since position: UInt64) throws -> Int {
        try ledger.env.read { txn in
            var n = 0
            try txn.scanNumbered(ledger.pending, d, from: position) { _, _ in n += 1; return true }
            return n
        }
    }

    /// The marks of `d`'s records pending here that gather signatures, in queue order.
    public func gatheringMarks(_ d: DatanetID) throws -> [PendingMark] {
        try pendingRecords(d).filter(\.kind.gathersSignatures).map(PendingMark.init)
    }
}
