import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What observing a checkpoint from elsewhere showed.
public enum CheckpointObservation: Sendable, Equatable {
    /// Consistent with this node's log (same root at that size, or beyond our log).
    case consistent(size: UInt64)
    /// It and another validly signed checkpoint cannot both hold; the evidence is stored.
    case fork(evidence: String)
    /// Its root differs from this log's at its size, but this store holds no signed checkpoint
    /// of that size to prove it to anyone else: nothing is stored as evidence.
    case inconsistent(size: UInt64)
}

extension Ledger {
    /// Checks a signed checkpoint received from elsewhere (a peer, a bundle, a backup) against
    /// the sequencer key in force and this node's log, and remembers it (table `observed`).
    ///
    /// A checkpoint at a size this node has whose root differs from ours is a fork: both signed
    /// notes are kept as portable evidence (schema/checkpoint.md) and reported. A checkpoint
    /// larger than our log signed by our own sequencer key means this store was restored from
    /// an older copy: `sequence` then refuses to run.
    public func observe(note: String, datanet d: DatanetID) throws -> CheckpointObservation {
        let st = try reader.state(of: d)
        let cp = try verifiedCheckpoint(note, d)
        // Tables are opened before the write transaction: opening one begins a transaction of its own.
        let log = try merkleLog(d)
        return try env.write { txn in
            try txn.put(observed, BigEndian.key(d, cp.size), Array(note.utf8))
            guard cp.size <= st.size else { return .consistent(size: cp.size) }
            let ours = try txn.get(checkpoints, BigEndian.key(d, cp.size)).map { String(decoding: $0, as: UTF8.self) }
            let root = try log.root(txn, size: cp.size)
            if root == cp.root { return .consistent(size: cp.size) }
            guard let ours else { return .inconsistent(size: cp.size) }
            let evidence = ForkEvidence(datanet: d.hex, notes: [ours, note])
            let json = try JSONEncoder.canonical.encode(evidence)
            try txn.put(forks, BigEndian.key(d, cp.size), Array(json))
            return .fork(evidence: String(decoding: json, as: UTF8.self))
        }
    }

    /// The size of a signed checkpoint of `d` received from elsewhere, once its signature holds
    /// under the key in force at that size and, at a size this log has, its root is this log's.
    /// Writes nothing (unlike `observe`): for choosing where a bundle starts.
    public func agreedSize(ofNote note: String, datanet d: DatanetID) throws -> UInt64 {
        let st = try reader.state(of: d)
        let cp = try verifiedCheckpoint(note, d)
        guard cp.size <= st.size else { return cp.size }
        let log = try merkleLog(d)
        guard try env.read({ txn in try log.root(txn, size: cp.size) }) == cp.root else {
            throw LedgerRefusal.checkpointRefused("its root at size \(cp.size) is not this log's: the two histories fork (`datanet checkpoint D --observe FILE` keeps the evidence)")
        }
        return cp.size
    }

    /// A checkpoint note of `d` from elsewhere, its signature checked under the sequencer key in
    /// force at its size; refused (`checkpointRefused`, `wrongDatanet`) otherwise.
    private func verifiedCheckpoint(_ note: String, _ d: DatanetID) throws -> Checkpoint {
        let cp: Checkpoint
        do {
            let size = try Checkpoint.unverified(note: note).size
            cp = try Checkpoint.verify(note: note, key: try sequencerKey(d, size: size))
        } catch let e as LedgerRefusal { throw e } catch { throw LedgerRefusal.checkpointRefused("\(error)") }
        guard cp.origin == Checkpoint.origin(of: d) else { throw LedgerRefusal.wrongDatanet(record: "checkpoint", names: cp.origin) }
        return cp
    }

    /// The sequencer key that signs the checkpoint of `size` (schema/checkpoint.md "Which key
    /// signs which size"), found by walking this log's policy chain back from leaf size − 1 to
    /// the latest handoff in force at that size (`LeafKind.newKeySigns`). Sizes beyond this log
    /// take the key in force now.
    func sequencerKey(_ d: DatanetID, size: UInt64) throws -> PublicKey {
        let st = try reader.state(of: d)
        let table = try leafTable(d)
        return try env.read { txn in try sequencerKey(txn, st, leaves: table, size: size) }
    }

    /// `sequencerKey(d, size:)` in a transaction, for the state `st`.
    func sequencerKey(_ txn: Transaction, _ st: DatanetState, leaves: LeafTable, size: UInt64) throws -> PublicKey {
        guard size > 0, size <= st.size else { return st.policy.sequencer }
        func leaf(_ i: UInt64) throws -> Leaf {
            guard let leaf = try leaves.leaf(txn, i) else { throw LedgerError.corruptLog("leaf \(i) is missing") }
            return leaf
        }
        let last = try leaf(size - 1)
        var at: UInt64? = [.policy, .setSequencer, .continuation].contains(last.kind) ? size - 1 : last.policy?.index
        while let i = at {
            let l = i == size - 1 ? last : try leaf(i)
            let handsOver = l.kind.newKeySigns(from: i).map { size >= $0 } ?? false
            guard let governing = l.governing else { throw LedgerError.corruptLog("leaf \(i) is cited as a policy leaf but is a \(l.kind) leaf") }
            switch try Record(governing) {
            case .genesis(let g): return g.policy.sequencer
            case .setSequencer(let h) where handsOver: return h.sequencer
            case .continuation(let k) where handsOver: return k.sequencer
            default: break
            }
            guard let next = l.policy?.index, next < i else { break }
            at = next
        }
        throw LedgerError.corruptLog("the policy chain of \(st.id.hex) does not reach its genesis from leaf \(size - 1)")
    }

    /// The sequencer keys of `d` in the order its log made them, each with the leaf that did
    /// (the genesis, then each set-sequencer or continuation leaf).
    public func sequencerKeys(_ d: DatanetID) throws -> [(key: PublicKey, leaf: UInt64)] {
        let st = try reader.state(of: d)
        let leaves = try leafTable(d)
        return try env.read { txn in
            var out = [(key: PublicKey, leaf: UInt64)]()
            guard st.size > 0 else { return [(st.policy.sequencer, 0)] }
            let last = st.size - 1
            guard let tip = try leaves.leaf(txn, last) else { throw LedgerError.corruptLog("leaf \(last) of \(d.hex) is missing") }
            var at: UInt64? = [.policy, .setSequencer, .continuation].contains(tip.kind) ? last : tip.policy?.index
            while let i = at {
                guard let l = i == last ? tip : try leaves.leaf(txn, i), let governing = l.governing else {
                    throw LedgerError.corruptLog("leaf \(i) is cited as a policy leaf but is missing or not one")
                }
                switch try Record(governing) {
                case .genesis(let g): return [(g.policy.sequencer, i)] + out.reversed()
                case .setSequencer(let h): out.append((h.sequencer, i))
                case .continuation(let k): out.append((k.sequencer, i))
                default: break
                }
                guard let next = l.policy?.index, next < i else { break }
                at = next
            }
            throw LedgerError.corruptLog("the policy chain of \(d.hex) does not reach its genesis")
        }
    }

    /// One of `among` (Datanets the peer is known to serve) held here whose log hands its
    /// sequencer over from `old` to `new` (directly or through keys between) after `old` had
    /// really sequenced it — this store holds a checkpoint of it that `old` signed — with the
    /// leaf that made `new` its sequencer; nil when none does. What lets a peer pinned to `old`
    /// present `new` (schema/identity.md "Contacts"): a genesis may name anyone's key as its
    /// sequencer, so a log that `old` never signed proves nothing about `old`.
    public func sequencerHandoff(from old: PublicKey, to new: PublicKey, among: Set<DatanetID>) throws -> (datanet: DatanetID, leaf: UInt64)? {
        for st in try reader.datanets() where among.contains(st.id) {
            let keys = try sequencerKeys(st.id)
            guard let i = keys.firstIndex(where: { $0.key == old }), let j = keys.lastIndex(where: { $0.key == new }), j > i,
                  try reader.checkpoints(st.id).contains(where: { (try? Checkpoint.verify(note: $0.note, key: old)) != nil })
            else { continue }
            return (st.id, keys[j].leaf)
        }
        return nil
    }

    /// Refuses when a checkpoint signed by `key` is larger than our log (a restored backup
    /// must not sequence again: it would sign a second history).
    func checkNotBehind(_ txn: Transaction, _ st: DatanetState, key: SigningKey) throws {
        var larger: UInt64?
        try txn.scanNumbered(observed, st.id, from: st.size + 1) { size, v in
            if (try? Checkpoint.verify(note: String(decoding: v, as: UTF8.self), key: key.publicKey)) != nil { larger = size }
            return larger == nil
        }
        if let larger {
            throw LedgerStateError.storeBehind(signed: larger, held: st.size)
        }
    }
}

/// Two signed checkpoints of one Datanet that cannot both hold (schema/checkpoint.md).
public struct ForkEvidence: Codable, Sendable {
    public var type = "datanet/fork-evidence/v1"
    public var datanet: String
    /// The two signed notes, of one size, ours first when one is ours.
    public var notes: [String]

    /// Evidence read from elsewhere (a bundle), kept only when it proves a fork: exactly two
    /// notes of Datanet `d`, of one size and different roots, each signed by the key in force
    /// at that size (`key`). Returns that size; anything else is refused, so no one can plant
    /// junk that would block real evidence at a size.
    static func validated(_ bytes: [UInt8], datanet d: DatanetID, key: (UInt64) -> PublicKey?) throws -> UInt64 {
        let refuse = BundleError.malformed("fork evidence is not two notes of one size, each signed by the key in force there, that disagree")
        try StrictJSON.check(Data(bytes))
        guard let e = try? JSONDecoder().decode(ForkEvidence.self, from: Data(bytes)), e.type == "datanet/fork-evidence/v1",
              e.datanet == d.hex, e.notes.count == 2,
              let a = try? Checkpoint.unverified(note: e.notes[0]), let b = try? Checkpoint.unverified(note: e.notes[1]),
              a.size == b.size, a.root != b.root, a.origin == Checkpoint.origin(of: d), b.origin == a.origin,
              let k = key(a.size), (try? Checkpoint.verify(note: e.notes[0], key: k)) != nil,
              (try? Checkpoint.verify(note: e.notes[1], key: k)) != nil else { throw refuse }
        return a.size
    }
}

extension JSONEncoder {
    static var canonical: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

extension Ledger {
    /// Applies the owner's `continuation` after a sequencer key was lost: the record must be
    /// signed by the owner, name this log's current size and root (the last good state), and
    /// name `key` as the new sequencer. Its leaf is the new key's first; the checkpoint that
    /// covers it is signed by the new key (schema/checkpoint.md).
    public func applyContinuation(_ envelope: Envelope, key: SigningKey) throws -> String {
        let record = try Record(envelope)
        guard case .continuation(let c) = record else { throw LedgerRefusal.record(.malformed("not a continuation record")) }
        try record.checkKeysUsable()
        let signers = try envelope.verifiedSigners()
        let log = try merkleLog(c.datanet)
        let leavesTable = try leafTable(c.datanet)
        return try env.write { txn in
            var st = try state(txn, c.datanet)
            guard st.policy.authorizesContinuation(signers) else { throw LedgerRefusal.unauthorized(kind: "continuation", needs: "the owner's signature") }
            guard c.sequencer == key.publicKey else { throw LedgerRefusal.notSequencer(key: key.publicKey.description, sequencer: c.sequencer.description) }
            guard c.size == st.size, try log.root(txn, size: c.size) == c.root else {
                throw LedgerStateError.notLastState(size: c.size, held: st.size)
            }
            let leaf = Leaf(datanet: c.datanet, policy: (st.policyIndex, st.policyLeafHash), payload: .continuation(envelope))
            let hash = try appendLeaf(txn, leaf, at: st.size, table: leavesTable, log: log)
            try index.apply(txn, c.datanet, first: st.size, [.governing(envelope)])
            st.policyIndex = st.size; st.policyLeafHash = hash; st.policyRecord = envelope.id
            st.policy.sequencer = key.publicKey
            st.size += 1
            return try sign(txn, &st, log: log, key: key)
        }
    }
}
