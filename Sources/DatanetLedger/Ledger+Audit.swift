import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What `datanet audit` found.
public struct AuditReport: Codable, Sendable {
    public var datanet: String
    public var leaves: UInt64
    public var signatures: Int
    /// Signed checkpoints checked against the replayed log (this node's and observed ones).
    public var checkpoints: Int
    public var violations: [AuditViolation]
    /// Fork evidence this store holds for the Datanet (kept by `checkpoint --observe`, bundle
    /// import or sync): signed checkpoints of one size that disagree, whatever the replay says.
    public var forks: [ForkEvidence]
    public var holds: Bool { violations.isEmpty && forks.isEmpty }
}

extension Ledger {
    /// Leaves decoded and signature-checked per batch (on every core) while auditing.
    static let auditBatch = 8192

    /// Replays a Datanet's whole log from its genesis (schema/log.md "Audit"): every signature,
    /// policy transition, key handoff, intake and decision against the rules then in force, and
    /// every signed checkpoint held against the replayed roots. Violations carry portable
    /// evidence: the leaf with an inclusion proof to the newest checkpoint, or the disagreeing note.
    public func audit(_ d: DatanetID, progress: ((UInt64) -> Void)? = nil) throws -> AuditReport {
        let table = try leafTable(d)
        let notes = try env.read { txn in
            var bySize = [UInt64: [String]]()
            for t in [checkpoints, observed] {
                try txn.scanNumbered(t, d) { size, v in
                    bySize[size, default: []].append(String(decoding: v, as: UTF8.self))
                    return true
                }
            }
            return bySize
        }
        var auditor = LogAuditor(datanet: d)
        var pipeline = AuditPipeline(notes: notes)
        var from: UInt64 = 0
        while true {
            let batch: [(index: UInt64, bytes: [UInt8])] = try env.read { txn in
                var out = [(index: UInt64, bytes: [UInt8])]()
                try table.scan(txn, from: from) { k, v in
                    out.append((k, Array(v)))
                    return out.count < Self.auditBatch
                }
                return out
            }
            guard let last = batch.last else { break }
            from = last.index + 1
            try pipeline.push(batch, into: &auditor)
            progress?(auditor.size)
        }
        try pipeline.finish(into: &auditor)
        return AuditReport(datanet: d.hex, leaves: auditor.size, signatures: auditor.signatures, checkpoints: pipeline.checkpointsChecked,
                           violations: try withEvidence(auditor.violations, d, table: table), forks: try reader.forkEvidence(d))
    }

    /// Attaches each leaf violation's leaf and inclusion proof to the newest checkpoint held.
    private func withEvidence(_ violations: [AuditViolation], _ d: DatanetID, table: LeafTable) throws -> [AuditViolation] {
        guard !violations.isEmpty, let note = try reader.latestCheckpoint(d), let cp = try? Checkpoint.unverified(note: note) else { return violations }
        let log = try merkleLog(d)
        return try env.read { txn in
            try violations.map { v in
                guard let i = v.index, i < cp.size, v.evidence == nil, let bytes = try table.get(txn, i) else { return v }
                var out = v
                out.evidence = AuditEvidence(leaf: Data(bytes).base64EncodedString(),
                                             proof: try log.inclusionProof(txn, index: i, size: cp.size).map { Data($0.bytes).base64EncodedString() },
                                             checkpoint: note)
                return out
            }
        }
    }
}
