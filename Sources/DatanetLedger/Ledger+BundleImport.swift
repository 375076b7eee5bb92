import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

extension Ledger {
    /// Imports a bundle in one transaction, after checking everything exactly as `audit`
    /// would: the whole log (this store's leaves and the bundle's) is replayed from the genesis
    /// with every signature and rule, every checkpoint must be signed by the key in force and
    /// match the replayed root, the newest must cover the last leaf, every object must match its
    /// id and every contribution's content must arrive (unless the bundle is records-only).
    /// Pending records join this store's pending set. Any failure changes nothing.
    public func importBundle(from fd: Int32) throws -> BundleSummary {
        // The transaction runs again from the start when the map grows: so does the file.
        let start = lseek(fd, 0, SEEK_CUR)
        return try env.write { txn in
            if start >= 0 { lseek(fd, start, SEEK_SET) }
            var replay: LogAuditor?
            return try importBundle(txn, fd, of: nil, replay: &replay, proof: nil).summary
        }
    }

    /// Imports one bundle in `txn`. `replay` is the replay of this store's log as it stands in
    /// `txn` when a caller carries it from an earlier bundle (else the log is replayed here,
    /// without signatures); it leaves holding the replay through this bundle. With `proof` the
    /// bundle is a batch: its leaves must be the subtree the proof places in the checkpoint it
    /// names, which need not cover them; `verified` then tells whether that checkpoint's
    /// signature checked out under the key in force so far (a batch before a key handoff the
    /// checkpoint is past cannot know its key yet: it is committed only with a later one).
    /// With `expected`, the bundle must be of that Datanet.
    /// With `onlyBy` (a contributor who may not read the Datanet), the bundle may hold nothing
    /// but pending records signed by that key, their sidecars and content (no leaves,
    /// checkpoints, promises or evidence). `memo` carries a run's near-duplicate band entries
    /// from one bundle to the next (`BandMemo`).
    func importBundle(_ txn: Transaction, _ fd: Int32, of expected: DatanetID?, replay: inout LogAuditor?, proof: BatchProof?,
                      onlyBy: PublicKey? = nil, memo: BandMemo? = nil) throws -> (summary: BundleSummary, verified: Bool) {
        let reader = try BundleReader(fd: fd)
        guard let (type, headerBytes) = try reader.next(), type == .header else { throw BundleError.malformed("the first frame is not the header") }
        guard case .map(let entries) = try CBOR.decode(headerBytes), entries.count == 4,
              let db = entries[0].value.bytesValue, let d = DatanetID(bytes: db), let from = entries[1].value.unsignedValue,
              let to = entries[2].value.unsignedValue, case .bool(let recordsOnly) = entries[3].value, from <= to,
              entries.map(\.key) == [.unsigned(1), .unsigned(2), .unsigned(3), .unsigned(4)]
        else { throw BundleError.malformed("the header is not {1: Datanet, 2: from, 3: to, 4: records-only}") }
        if let expected, expected != d { throw BundleError.refused("it is a bundle of \(d.hex), not of \(expected.hex)") }
        if onlyBy != nil, from != 0 || to != 0 { throw BundleError.refused("this peer may send only its own pending records, not leaves") }
        if let proof, proof.start != from || proof.end != to {
            throw BundleError.malformed("the batch of leaves \(proof.start)–\(proof.end) came as a bundle of leaves \(from)–\(to)")
        }
        var summary = BundleSummary(datanet: d.hex, from: from, to: to)
        var verified = proof == nil
        let table = try leafTable(d)
        let log = try merkleLog(d)
        let local = try? state(txn, d)
        let localSize = local?.size ?? 0
        guard from <= localSize else {
            throw BundleError.refused("it starts at leaf \(from) but this store has \(localSize) leaves of \(d.hex.prefix(16))…: leaves \(localSize)–\(from - 1) are missing; ask the sender for `datanet bundle export D --for YOU` (or --since \(localSize))")
        }
        // The replay runs as the leaves arrive: this store's leaves first, then each batch
        // of the bundle's is decoded and signature-checked on the other threads while this
        // one reads and stores the frames after it (objects, records). Checkpoints are
        // checked after the replay, against the log's roots at their sizes.
        if proof != nil, from == to || to - from > BatchProof.maximumLeaves {
            throw BundleError.malformed("a batch of \(to - from) leaves (1 to \(BatchProof.maximumLeaves))")
        }
        let carried = replay.map { $0.size == localSize && local != nil } ?? false
        var auditor = carried ? replay! : LogAuditor(datanet: d)
        replay = nil // moved: the auditor's tables grow below without a copy (a throw ends the caller's run)
        var pipeline = AuditPipeline(notes: [:], depth: 16)
        var checkedNew = [CheckedLeaf]()
        // A new leaf is indexed as soon as the replay has added it, while later batches are
        // still being checked: a refusal later aborts the transaction with the rest.
        let keepNew = { (leaf: CheckedLeaf) throws in
            guard leaf.index >= localSize else { return }
            checkedNew.append(leaf)
            try self.indexLeaf(txn, d, leaf)
        }
        var batch = [(index: UInt64, bytes: [UInt8])]()
        // This store's own leaves were checked when stored: replayed for the state in force,
        // their signatures not checked again (a delta's cost is the delta's, not the log's),
        // unless a caller carries that replay from the bundle before.
        try table.scan(txn) { k, v in
            guard !carried, k < localSize else { return false }
            batch.append((k, Array(v)))
            if batch.count == Self.auditBatch {
                try pipeline.push(batch, into: &auditor, verify: false, each: keepNew)
                batch.removeAll(keepingCapacity: true)
            }
            return true
        }
        if !batch.isEmpty { try pipeline.push(batch, into: &auditor, verify: false, each: keepNew) } // (an empty push drains)
        batch.removeAll(keepingCapacity: true)
        // Objects and sidecars this import stored: kept at the end only if a live record
        // reaches them (a bundle cannot plant storage, nor bring back what a tombstone erased).
        var objects = ObjectBatch()
        var freshSidecars = [Digest]()
        var live = LiveContent()
        var notes = [String]()
        var envelopes = [Envelope]()
        var promises = [IntakePromise]()
        var evidence = [[UInt8]]()
        var next = from
        var frames = 0
        // Chunks are hashed a batch at a time on every core (their ids and whether they may start
        // a text), then stored in arrival order as one at a time would be; all before the commit.
        var unhashed = [[UInt8]](), unhashedBytes = 0
        // The text of a blob of one chunk is sketched on other threads as the chunk arrives
        // (a bundle sends a blob before the chunks it names, unless the chunk went earlier),
        // while this thread replays; the near-duplicate flags take these sketches instead of
        // reading each text back (a text without one, past `ArrivingSketches.kept` or out of
        // that order, is read back as before).
        let sketches = ArrivingSketches<ObjectID>(datanet: d)
        var soleChunkOf = [ObjectID: ObjectID](), arrivedSketches: [ObjectID: TextSketch]?
        func arrived() -> [ObjectID: TextSketch] {
            if arrivedSketches == nil { arrivedSketches = sketches.taken() }
            return arrivedSketches!
        }
        func hashChunks() throws {
            guard !unhashed.isEmpty else { return }
            let checked = try Parallel.map(unhashed, grain: 8) { (try ObjectStore.validated(.chunk, $0).id, ObjectStore.mayBeText($0)) }
            var texts = [(keys: [ObjectID], bytes: [UInt8])]()
            for (payload, (id, text)) in zip(unhashed, checked) {
                live.fresh[id] = (.chunk, [])
                if !text { live.binaryChunks.insert(id) }
                try objects.add(.chunk, id, payload, txn: txn, store: store)
                if text, let blob = soleChunkOf.removeValue(forKey: id) { texts.append(([blob], payload)) }
            }
            sketches.add(texts)
            unhashed.removeAll(keepingCapacity: true)
            unhashedBytes = 0
        }
        while let (type, payload) = try reader.next() {
            frames += 1
            if onlyBy != nil, type != .record, type != .chunk, type != .blob, type != .tree, type != .sidecar {
                throw BundleError.refused("this peer may send only its own pending records and their content, not a \(type) frame")
            }
            if frames % 512 == 0 { try pipeline.poll(into: &auditor, each: keepNew) }
            switch type {
            case .header, .end: throw BundleError.malformed("a second \(type) frame")
            case .leaf:
                guard payload.count > 8 else { throw BundleError.malformed("a leaf frame without a leaf") }
                let index = BigEndian.u64(payload)
                guard index == next, index < to else { throw BundleError.malformed("leaf \(index) where leaf \(next) was due (leaves must run from \(from) to \(to) once, in order)") }
                let bytes = Array(payload[8...])
                if index < localSize {
                    guard try table.get(txn, index) == bytes else {
                        throw BundleError.refused("leaf \(index) differs from this store's: the bundle's log forks from this one")
                    }
                } else {
                    batch.append((index, bytes))
                    if batch.count == Self.auditBatch { try pipeline.push(batch, into: &auditor, each: keepNew); batch.removeAll(keepingCapacity: true) }
                }
                next += 1
            case .checkpoint: notes.append(String(decoding: payload, as: UTF8.self))
            case .record:
                let e = try Envelope(encoded: payload)
                if let key = onlyBy, !e.signatures.contains(where: { $0.key == key }) {
                    throw BundleError.refused("this peer may send only pending records it signed; record \(e.id.hex) is not one")
                }
                envelopes.append(e)
            case .promise:
                do { promises.append(try IntakePromise(encoded: payload)) } catch {
                    throw BundleError.malformed("an intake promise does not decode: \(error)")
                }
            case .chunk:
                unhashed.append(payload)
                unhashedBytes += payload.count
                if unhashedBytes >= 16 << 20 || unhashed.count >= 1_024 { try hashChunks() }
            case .blob, .tree:
                let kind: ObjectKind = type == .blob ? .blob : .tree
                let (id, children) = try ObjectStore.validated(kind, payload)
                live.fresh[id] = (kind, children)
                if kind == .blob, children.count == 1, children[0].0 == .chunk, !recordsOnly { soleChunkOf[children[0].1] = id }
                try objects.add(kind, id, payload, txn: txn, store: store)
            case .sidecar:
                guard payload.count <= Sidecar.maximumSize else {
                    throw BundleError.malformed("a sidecar of \(payload.count) bytes exceeds \(Sidecar.maximumSize)")
                }
                let h = SHA256.hash(payload)
                if try !txn.contains(sidecars, h) {
                    try txn.put(sidecars, h, payload)
                    freshSidecars.append(h)
                }
            case .forkEvidence:
                evidence.append(payload) // checked once the replay knows every key in force
            }
        }
        try hashChunks()
        guard next == to else { throw BundleError.malformed("the bundle ends at leaf \(next), its header says \(to)") }
        try objects.flush(txn: txn, store: store)
        let freshObjects = objects.fresh
        for id in objects.present { live.fresh[id] = nil } // already held: walked through the store
        summary.leaves = Int(to - from)
        summary.newLeaves = Int(to - max(from, min(to, localSize)))
        if recordsOnly { summary.withoutContent = [from..<to] }
        summary.checkpoints = notes.count
        if let proof {
            // A batch is placed in the checkpoint's log by its proofs before the replay
            // judges its last leaves (all of them: a batch is smaller than a replay batch).
            // Leaves of it this store held already were found equal to its own above.
            let held = try (from..<min(to, localSize)).map { try log.node(txn, level: 0, index: $0) }
            try proof.place(leaves: held + batch.map { Merkle.leafHash($0.bytes) }, from: from,
                            prefix: { try log.root(txn, size: from) }, origin: Checkpoint.origin(of: d))
        }
        try pipeline.push(batch, into: &auditor, each: keepNew)
        try pipeline.finish(into: &auditor, each: keepNew)
        let origin = Checkpoint.origin(of: d)
        if let proof { verified = proof.isSigned(key: auditor.key(forSize:)) }
        let parsedNotes = try notes.map { note -> (String, Checkpoint) in
            guard let cp = try? Checkpoint.unverified(note: note) else { throw BundleError.malformed("a checkpoint note does not parse") }
            guard cp.size <= auditor.size else { throw BundleError.refused("a checkpoint is beyond the bundle's last leaf") }
            return (note, cp)
        }
        // Proposals queued here that the new leaves take in: this store relayed them (or made
        // them), so it keeps their promises to pass back to whoever gave them to it.
        let relayed = try Set(promises.map(\.record).filter { try txn.contains(pendingIndex, $0) })
        // The replay decoded and hashed every new leaf: reused here. Appended before the
        // checks below only because they need the log's roots; a refusal aborts the transaction.
        try appendLeaves(txn, checkedNew.map { ($0.bytes, $0.hash) }, at: localSize, table: table, log: log)
        for (note, cp) in parsedNotes where cp.size > 0 {
            auditor.checkpoint(note, origin: origin, root: try log.root(txn, size: cp.size))
        }
        if let v = auditor.violations.first {
            throw BundleError.refused((v.index.map { "leaf \($0): " } ?? "") + "\(v.rule): \(v.detail)")
        }
        for payload in evidence {
            // Kept as `observe` keeps its own: under the size the notes disagree at.
            let size = try ForkEvidence.validated(payload, datanet: d) { auditor.key(forSize: $0) }
            if try !txn.contains(forks, BigEndian.key(d, size)) { try txn.put(forks, BigEndian.key(d, size), payload) }
        }
        guard let st = auditor.state else { throw BundleError.refused("no genesis") }
        if !checkedNew.isEmpty {
            guard proof != nil || parsedNotes.contains(where: { $0.1.size == to }) else {
                throw BundleError.refused("no signed checkpoint covers its last leaf \(to - 1)")
            }
            // Near-duplicate flags, once every leaf is in: content under a tombstone later in
            // the bundle is not flagged, nor content that arrived as binary.
            let withdrawn = Set(checkedNew.compactMap { $0.leaf?.tombstone?.contribution })
            var probes = [NearDuplicateProbe]()
            for leaf in checkedNew where leaf.leaf?.kind == .intake {
                guard case (let e, .contribution(let c), _)? = try? leaf.records.first?.get(),
                      !withdrawn.contains(e.id), !live.isBinary(c.content) else { continue }
                probes.append(NearDuplicateProbe(id: e.id, contribution: c, intakeIndex: leaf.index))
            }
            let made = arrived()
            for i in probes.indices { probes[i].sketch = made[probes[i].contribution.content] }
            var added = BandsAdded()
            try flagNearDuplicates(txn, probes, added: &added, memo: memo)
        }
        // Contributions whose content and sidecar this import may keep, content required
        // first: the new intake leaves (unless records-only), then pending proposals.
        for leaf in checkedNew {
            switch try? leaf.records.first?.get() {
            case (let e, .contribution(let c), _)? where leaf.leaf?.kind == .intake:
                try want(txn, d, e.id, c, into: &live, required: recordsOnly ? nil : "contribution \(e.id.hex) (leaf \(leaf.index))")
            case (_, .model(let m), _)? where leaf.leaf?.kind == .model:
                try wantArtifact(txn, d, m.artifact, into: &live)
            default: continue
            }
        }
        summary.promises = try keepPromises(txn, d, promises, relayed: relayed, auditor: auditor, newLeaves: checkedNew, localSize: localSize, table: table)
        if to > localSize || local == nil { try txn.put(state, d, st.encoded) }
        for (note, cp) in parsedNotes where cp.size > 0 { try txn.put(checkpoints, BigEndian.key(d, cp.size), Array(note.utf8)) }
        for e in envelopes {
            do {
                let record = try Record.verified(e)
                guard record.datanet == d else { throw BundleError.refused("record \(e.id.hex) is for another Datanet") }
                // Refused here for good (expiry): passed over before its content is kept.
                if let refused, try txn.contains(refused, e.id) { continue }
                if case .contribution(let c) = record {
                    try want(txn, d, e.id, c, into: &live, required: recordsOnly ? nil : "proposal \(e.id.hex)")
                }
                if case .model(let m) = record { try wantArtifact(txn, d, m.artifact, into: &live) }
                var sketch: TextSketch?
                if case .contribution(let c) = record { sketch = arrived()[c.content] }
                _ = try propose(txn, e, record, sketch: sketch)
                summary.records += 1
            } catch LedgerRefusal.alreadyDecided {
                continue // a review that can change nothing here: not kept
            } catch LedgerRefusal.expired {
                continue // refused here for good: passed over
            } catch LedgerRefusal.alreadyTaken {
                // Already in the log, or pending here: importing twice changes nothing, but
                // signatures gathered elsewhere (a curator quorum) join the pending copy.
                do {
                    if let added = try mergeSignatures(txn, e), added > 0 { summary.signatures += added }
                } catch LedgerRefusal.record {
                    continue // the union would exceed the envelope limit: keep the copy held
                }
            }
        }
        if to > localSize { try dropSettledReviews(txn, d) }
        // Contributions already in this log (a records-only import earlier) may take the
        // content and sidecars this bundle brought; nothing else may stay. The log is read
        // only when something arrived that no new leaf or proposal reaches.
        let freshIDs = Set(freshObjects.map(\.1).filter { !live.objects.contains($0) })
        let freshSidecarSet = Set(freshSidecars.filter { !live.sidecars.contains($0) })
        if !freshIDs.isEmpty || !freshSidecarSet.isEmpty {
            try table.scan(txn) { k, v in
                guard k < localSize, let leaf = try? Leaf(encoded: Array(v)) else { return k < localSize }
                if let e = leaf.intake?.contribution, case .contribution(let c)? = try? Record(e),
                   freshIDs.contains(c.content) || freshSidecarSet.contains(c.sidecar) {
                    try want(txn, d, e.id, c, into: &live, required: nil)
                } else if let m = leaf.model?.record, case .model(let r)? = try? Record(m), freshIDs.contains(r.artifact) {
                    try wantArtifact(txn, d, r.artifact, into: &live)
                }
                return true
            }
        }
        for (kind, id) in freshObjects {
            if live.objects.contains(id) { summary.objects += 1 } else { try store.discard(kind, id, in: txn); summary.skipped += 1 }
        }
        for h in freshSidecars {
            if live.sidecars.contains(h) { summary.sidecars += 1 } else { try txn.delete(sidecars, h); summary.skipped += 1 }
        }
        summary.bytes = reader.bytesRead
        replay = auditor
        return (summary, verified)
    }

    /// What an import keeps: objects reached from live contributions, and their sidecars.
    struct LiveContent {
        var objects = Set<ObjectID>()
        var sidecars = Set<Digest>()
        /// The kind each object was first reached as: an id reached again as another kind is missing.
        var kinds = [ObjectID: ObjectKind]()
        /// What each object this import stored is and names, as its frame showed (read once, not back).
        var fresh = [ObjectID: (ObjectKind, [(ObjectKind, ObjectID)])]()
        /// Chunks that arrived and cannot start a text: their blobs need no near-duplicate check.
        var binaryChunks = Set<ObjectID>()
        /// Whether any tombstone erased anything here (looked up once, after the leaves are
        /// indexed): when none has, `want` skips its erasure lookups.
        var erasures: Bool?

        /// Whether a blob that arrived starts with a chunk that is not text.
        func isBinary(_ blob: ObjectID) -> Bool {
            guard let (kind, children) = fresh[blob], kind == .blob, let first = children.first, first.0 == .chunk else { return false }
            return binaryChunks.contains(first.1)
        }
    }

    /// Object frames are stored in batches sorted by id: LMDB inserts of random keys in one
    /// large transaction touch a page per key, sorted ones fill pages in order.
    struct ObjectBatch {
        static let limit = 64 << 20
        private var pending = [(kind: ObjectKind, id: ObjectID, bytes: [UInt8])]()
        private var bytes = 0
        /// Stored by this import, in the order stored.
        private(set) var fresh = [(ObjectKind, ObjectID)]()
        /// Received but already held.
        private(set) var present = [ObjectID]()

        mutating func add(_ kind: ObjectKind, _ id: ObjectID, _ payload: [UInt8], txn: Transaction, store: ObjectStore) throws {
            pending.append((kind, id, payload))
            bytes += payload.count
            if bytes >= Self.limit { try flush(txn: txn, store: store) }
        }

        mutating func flush(txn: Transaction, store: ObjectStore) throws {
            pending.sort { ($0.kind.rawValue, $0.id) < ($1.kind.rawValue, $1.id) }
            for o in pending {
                if try store.put(o.kind, o.id, o.bytes, in: txn) { fresh.append((o.kind, o.id)) } else { present.append(o.id) }
            }
            pending.removeAll(keepingCapacity: true)
            bytes = 0
        }
    }
}
