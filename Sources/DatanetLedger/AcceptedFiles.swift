import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// A file of a Datanet's accepted content at a checkpoint (`datanet ls D[@SIZE]`).
public struct AcceptedFile: Sendable {
    /// The path `datanet export` writes it at, under `data/`: the contribution's exported name,
    /// then the path inside it for a folder (names in their exported form).
    public let path: String
    public let size: UInt64
    public let content: ObjectID
    public let contribution: RecordID
    public let intake: UInt64
}

extension Ledger {
    /// Every file of the contributions accepted at a checkpoint (the newest when nil) and under
    /// no tombstone, in intake order, folders walked in name order. A folder whose trees this
    /// store does not hold (a records-only replica) is listed as itself.
    public func acceptedFiles(_ d: DatanetID, at size: UInt64?) throws -> [AcceptedFile] {
        let end = try reader.checkpoint(d, at: size).size
        // Rows, sidecars and names a block at a time on the other cores.
        var out = [AcceptedFile]()
        let sidecarTable = self.sidecars
        if try reader.forEachRowBlock(d, below: end, { txn, rows in
            try rows.filter { $0.isAccepted(below: end) && $0.tombstone == nil }.flatMap { r in
                try self.files(of: r.contribution, id: r.id, intake: r.intake, sidecar: try Ledger.sidecar(txn, sidecarTable, r.contribution.sidecar))
            }
        }, consume: { out += $0 }) { return out }
        let items = try reader.accepted(d, at: size).items
        let sidecars = try reader.sidecars(of: items.map(\.contribution))
        return try zip(items, sidecars).flatMap { try files(of: $0.contribution, id: $0.id, intake: $0.intake, sidecar: $1) }
    }

    /// The files of one contribution, named as `acceptedFiles` names them.
    func files(of c: Contribution, id: RecordID, intake: UInt64, sidecar: Sidecar?) throws -> [AcceptedFile] {
        var out = [AcceptedFile]()
        func walk(_ object: ObjectID, _ kind: ObjectKind, _ path: String, _ size: UInt64) throws {
            if kind == .tree, let tree = try store.tree(object) {
                for e in tree.entries { try walk(e.id, e.kind, path + "/" + ExportedName.encode(e.name), e.size) }
            } else {
                out.append(AcceptedFile(path: path, size: size, content: object, contribution: id, intake: intake))
            }
        }
        let name = Self.exportedName(intake: intake, sidecar: sidecar, content: c.content)
        try walk(c.content, c.contentKind.object, name, c.size)
        return out
    }
}
