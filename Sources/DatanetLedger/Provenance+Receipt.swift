import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

extension Ledger {
    /// The indexes of the policy, set-sequencer and continuation leaves below `size`, in log
    /// order: walked back from the last leaf through the citations.
    func policyChain(_ txn: Transaction, _ d: DatanetID, size: UInt64, table: LeafTable) throws -> [UInt64] {
        func leaf(_ index: UInt64) throws -> Leaf {
            guard let leaf = try table.leaf(txn, index) else { throw LedgerError.corruptLog("leaf \(index) is missing") }
            return leaf
        }
        guard size > 0 else { return [] }
        var indexes = [UInt64]()
        let lastLeaf = try leaf(size - 1)
        var at: UInt64? = [.policy, .setSequencer, .continuation].contains(lastLeaf.kind) ? size - 1 : lastLeaf.policy?.index
        while let i = at {
            indexes.append(i)
            at = try leaf(i).policy?.index
            if let next = at, next >= i { throw LedgerError.corruptLog("leaf \(i) cites a later policy leaf \(next)") }
        }
        return indexes.reversed()
    }
}

extension Provenance {
    /// A receipt for a contribution in this store's log, against the newest checkpoint held.
    public func receipt(for contribution: RecordID) throws -> Receipt {
        guard let (d, intakeIndex) = try ledger.reader.placement(contribution) else {
            throw LedgerRefusal.notInLog(record: contribution.hex)
        }
        guard let note = try ledger.reader.latestCheckpoint(d) else { throw LedgerStateError.noCheckpoint(datanet: d.hex, size: nil) }
        let size = try Checkpoint.unverified(note: note).size
        let log = try ledger.merkleLog(d)
        let table = try ledger.leafTable(d)
        return try ledger.env.read { txn in
            func entry(_ index: UInt64) throws -> Receipt.Entry {
                guard let bytes = try table.get(txn, index) else { throw LedgerError.corruptLog("leaf \(index) is missing") }
                let proof = try log.inclusionProof(txn, index: index, size: size)
                return Receipt.Entry(index: index, leaf: Data(bytes).base64EncodedString(), proof: proof.map { Data($0.bytes).base64EncodedString() },
                                     view: try RecordView.leaf(try table.decode(index, bytes)))
            }
            func leaf(_ index: UInt64) throws -> Leaf {
                guard let leaf = try table.leaf(txn, index) else { throw LedgerError.corruptLog("leaf \(index) is missing") }
                return leaf
            }
            guard intakeIndex < size, try leaf(intakeIndex).kind == .intake else {
                throw LedgerRefusal.notInLog(record: contribution.hex)
            }
            let chainIndexes = Array(try ledger.policyChain(txn, d, size: size, table: table).reversed())
            let decision = try ledger.decision(txn, contribution).flatMap { $0 < size ? $0 : nil }
            var cited = [UInt64]()
            if let decision, case .cited(let indexes)? = try leaf(decision).decision?.reviews { cited = indexes }
            // Each handoff that names the log it takes over gets a consistency proof from there.
            var handoffs = [Receipt.Handoff]()
            for i in chainIndexes.reversed() {
                guard let e = try leaf(i).governing, let from = try? Record(e).takesOver, from.size < size else { continue }
                let proof = try log.consistencyProof(txn, size1: from.size, size2: size)
                handoffs.append(Receipt.Handoff(index: i, consistency: proof.map { Data($0.bytes).base64EncodedString() }))
            }
            return Receipt(datanet: d.hex, contribution: contribution.hex, checkpoint: note,
                           chain: try chainIndexes.reversed().map(entry),
                           last: chainIndexes.first == size - 1 ? nil : try entry(size - 1),
                           intake: try entry(intakeIndex), decision: try decision.map(entry),
                           reviews: cited.isEmpty ? nil : try cited.map(entry), handoffs: handoffs.isEmpty ? nil : handoffs)
        }
    }

    /// The receipt remade against the newest checkpoint held here, keeping the checkpoint it
    /// was made for as `previous` with a consistency proof to the new one.
    public func refreshed(_ old: Receipt) throws -> Receipt {
        guard let id = RecordID(hex: old.contribution) else { throw RecordError.malformed("the receipt names no valid contribution id") }
        var fresh = try receipt(for: id)
        let before = try Checkpoint.unverified(note: old.checkpoint)
        let after = try Checkpoint.unverified(note: fresh.checkpoint)
        guard before.size <= after.size else { throw LedgerStateError.beyondLog(size: before.size, held: after.size) }
        guard before.size < after.size else { return old }
        let log = try ledger.merkleLog(DatanetID(hex: fresh.datanet)!)
        let proof = try ledger.env.read { txn in try log.consistencyProof(txn, size1: before.size, size2: after.size) }
        fresh.previous = Receipt.Previous(checkpoint: old.checkpoint, consistency: proof.map { Data($0.bytes).base64EncodedString() })
        return fresh
    }
}
