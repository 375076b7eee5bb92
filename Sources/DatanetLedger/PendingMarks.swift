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

extension LedgerReader {
    /// The marks of `d`'s records pending here, in queue order.
    public func pendingMarks(_ d: DatanetID) throws -> [PendingMark] {
        try pendingRecords(d).map(PendingMark.init)
    }
}
