import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// A model record this store holds: registered (at a model leaf of its Datanet) or pending.
public struct HeldModel: Sendable {
    public var envelope: Envelope
    public var record: ModelRecord
    /// The model leaf's index; nil while the record waits in pending.
    public var leaf: UInt64?
    public var id: RecordID { envelope.id }
}

extension LedgerReader {
    /// The models of `d` (of every Datanet when nil): registered ones in leaf order, then
    /// pending ones in arrival order.
    public func models(of d: DatanetID? = nil) throws -> [HeldModel] {
        let ids = try d.map { [$0] } ?? datanets().map(\.id)
        var out = [HeldModel]()
        for d in ids {
            try forEachLeafSummary(d, kinds: [.model]) { i, summary in
                if case .other(let leaf) = summary, let m = leaf.model, case .model(let r) = try Record(m.record) {
                    out.append(HeldModel(envelope: m.record, record: r, leaf: i))
                }
                return true
            }
            for e in try pendingRecords(d) where e.kind == .model {
                if case .model(let r) = try Record(e) { out.append(HeldModel(envelope: e, record: r, leaf: nil)) }
            }
        }
        return out
    }

    /// A model record by id, with its leaf when registered; nil when the id is not a model held here.
    public func model(_ id: RecordID) throws -> HeldModel? {
        guard let e = try record(id), e.kind == .model, case .model(let r) = try Record(e) else { return nil }
        guard let (d, index) = try placement(id) else { return HeldModel(envelope: e, record: r, leaf: nil) }
        guard d == r.datanet else { throw LedgerError.corruptEntry(table: "placed", key: id.hex, why: "a model of \(r.datanet.hex) placed in \(d.hex)") }
        return HeldModel(envelope: e, record: r, leaf: index)
    }

    /// The models named `name`: registered ones before pending ones (a pending record is only
    /// its builder's word), each newest created-at first (ties: the greater record id first).
    public func models(named name: String) throws -> [HeldModel] {
        try models().filter { $0.record.name == name }.sorted {
            if ($0.leaf == nil) != ($1.leaf == nil) { return $0.leaf != nil }
            return $0.record.createdAt != $1.record.createdAt ? $0.record.createdAt > $1.record.createdAt : $0.id > $1.id
        }
    }
}

extension Ledger {
    /// What `datanet verify MODEL` checks (schema/model.md "Verifying a model"): the record's
    /// signature and builder; its leaf's inclusion in the newest checkpoint, signed by the key in
    /// force; the checkpoint it names, signed and consistent with the log before its leaf; the
    /// artifact's bytes against the bound blob; and content of its training set withdrawn since it
    /// was trained (a failure unless `allowWithdrawn`, as for receipts).
    public func verifyModel(_ m: HeldModel, allowWithdrawn: Bool = false) throws -> (checks: [VerificationCheck], withdrawn: [(contribution: RecordID, leaf: UInt64)]) {
        var checks = [VerificationCheck]()
        let r = m.record
        do {
            _ = try Record.verifiedWithSigners(m.envelope)
            checks.append(.init("the model record is signed by its builder", .pass, r.builder.description))
        } catch { checks.append(.init("the model record is signed by its builder", .fail, "\(error)")) }
        guard let index = m.leaf else {
            checks.append(.init("the model is registered in its Datanet's log", .fail, "it is pending: the sequencer has not placed it yet"))
            return (checks, [])
        }
        let st = try reader.state(of: r.datanet)
        let log = try merkleLog(r.datanet), leaves = try leafTable(r.datanet)
        let (newest, newestSize) = try reader.checkpoint(r.datanet, at: nil)
        let facts = try env.read { txn -> (leaf: Leaf?, hash: Digest?, proof: [Digest], boundRoot: Digest?, policy: PolicyState?) in
            let bytes = try leaves.get(txn, index)
            let leaf = try bytes.map { try leaves.decode(index, $0) }
            let proof = index < newestSize ? try log.inclusionProof(txn, index: index, size: newestSize) : []
            let bound = r.checkpointSize <= st.size ? try log.root(txn, size: r.checkpointSize) : nil
            // The policy in force at the leaf: the latest genesis or policy record along the
            // chain of citations (handoff leaves change only the sequencer, never `builders`).
            var policy: PolicyState?
            var at = leaf?.policy?.index
            while let i = at, policy == nil, let cited = try leaves.leaf(txn, i) {
                switch cited.governing.flatMap({ try? Record($0) }) {
                case .genesis(let x)?: policy = x.policy
                case .policy(let p)?: policy = p.state
                default: at = cited.policy.map(\.index).flatMap { $0 < i ? $0 : nil }
                }
            }
            return (leaf, bytes.map(Merkle.leafHash), proof, bound, policy)
        }
        guard let leaf = facts.leaf, let hash = facts.hash, leaf.model?.record.id == m.id else {
            checks.append(.init("the model is registered in its Datanet's log", .fail, "leaf \(index) does not carry it"))
            return (checks, [])
        }
        checks.append(.init("the model is registered in its Datanet's log", .pass, "model leaf \(index) of \(st.policy.name)"))
        if let policy = facts.policy {
            checks.append(.init("its builder may register models", policy.mayBuild(r.builder) ? .pass : .fail,
                                policy.mayBuild(r.builder) ? "owner, curator or builder under the policy in force at its leaf" : "\(r.builder) holds no such role"))
        } else {
            checks.append(.init("its builder may register models", .fail, "the policy chain from leaf \(index) does not reach a genesis or policy record"))
        }
        do {
            let cp = try Checkpoint.verify(note: newest, key: try sequencerKey(r.datanet, size: newestSize))
            guard index < cp.size else { throw LedgerStateError.noCheckpoint(datanet: r.datanet.hex, size: index + 1) }
            try Merkle.verifyInclusion(index: index, size: cp.size, leafHash: hash, proof: facts.proof, root: cp.root)
            checks.append(.init("its leaf is included in the newest signed checkpoint", .pass, "size \(cp.size)"))
        } catch { checks.append(.init("its leaf is included in the newest signed checkpoint", .fail, "\(error)")) }
        do {
            let (note, _) = try reader.checkpoint(r.datanet, at: r.checkpointSize)
            let cp = try Checkpoint.verify(note: note, key: try sequencerKey(r.datanet, size: r.checkpointSize))
            guard cp.root == r.checkpointRoot, facts.boundRoot == r.checkpointRoot else {
                throw LedgerRefusal.modelNamesAnotherLog("the checkpoint of size \(r.checkpointSize) has another root")
            }
            checks.append(.init("the checkpoint it was trained on is signed and of this log", .pass, "size \(r.checkpointSize), root \(r.checkpointRoot.hex)"))
        } catch { checks.append(.init("the checkpoint it was trained on is signed and of this log", .fail, "\(error)")) }
        do {
            let size = try store.verifiedBlobSize(r.artifact)
            guard size == r.artifactSize else { throw StoreError.corrupt("the artifact holds \(size) bytes; the record says \(r.artifactSize)") }
            checks.append(.init("the artifact's bytes hash to the bound blob", .pass, "\(r.artifact.hex), \(size) bytes"))
        } catch StoreError.notFound {
            checks.append(.init("the artifact's bytes hash to the bound blob", .notApplicable, "blob \(r.artifact.hex) is not in this store"))
        } catch { checks.append(.init("the artifact's bytes hash to the bound blob", .fail, "\(error)")) }
        // Content trained on and withdrawn since: tombstones the training set did not yet see
        // (a horizon past the model's leaf, which the replay refuses, is taken as the leaf).
        let licenses = r.setting("licenses").map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let horizon = min(r.training.tombstonesBefore, index)
        let withdrawn: [(contribution: RecordID, leaf: UInt64)]
        do {
            withdrawn = try reader.accepted(r.datanet, at: r.checkpointSize).withdrawn
                .filter { $0.tombstone >= horizon && (licenses?.contains($0.contribution.license) ?? true) }
                .map { (contribution: $0.id, leaf: $0.tombstone) }
        } catch {
            checks.append(.init("no content it was trained on has been withdrawn", .fail, "its training set cannot be read here: \(error)"))
            return (checks, [])
        }
        checks.append(.init("no content it was trained on has been withdrawn", withdrawn.isEmpty || allowWithdrawn ? .pass : .fail,
                            withdrawn.map { "trained on content withdrawn at leaf \($0.leaf) (\($0.contribution.hex))" }.joined(separator: "; ")))
        return (checks, withdrawn)
    }
}
