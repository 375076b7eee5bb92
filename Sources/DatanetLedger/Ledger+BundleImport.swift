import DatanetCBOR
import DatanetCrypto
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
        let reader = try BundleReader(fd: fd)
        guard let (type, headerBytes) = try reader.next(), type == .header else { throw BundleError.malformed("the first frame is not the header") }
        guard case .map(let entries) = try CBOR.decode(headerBytes), entries.count == 4,
              let db = entries[0].value.bytesValue, let d = Digest(bytes: db), let from = entries[1].value.unsignedValue,
              let to = entries[2].value.unsignedValue, case .bool(let recordsOnly) = entries[3].value, from <= to,
              entries.map(\.key) == [.unsigned(1), .unsigned(2), .unsigned(3), .unsigned(4)]
        else { throw BundleError.malformed("the header is not {1: Datanet, 2: from, 3: to, 4: records-only}") }
        var summary = BundleSummary(datanet: d.hex, from: from, to: to)
        return try env.write { txn in
            let table = try txn.openTable("leaves:" + d.hex, create: true)
            let log = try MerkleLog(txn, id: d, create: true)
            let local = try? state(txn, d)
            let localSize = local?.size ?? 0
            guard from <= localSize else {
                throw BundleError.refused("it starts at leaf \(from) but this store has \(localSize) leaves of \(d.hex.prefix(16))…; export with --since \(localSize) or less")
            }
            var newLeaves = [(UInt64, [UInt8])]()
            // Objects and sidecars this import stored: kept at the end only if a live record
            // reaches them (a bundle cannot plant storage, nor bring back what a tombstone erased).
            var freshObjects = [(ObjectKind, Digest)]()
            var freshSidecars = [Digest]()
            var notes = [String]()
            var envelopes = [Envelope]()
            var promises = [IntakePromise]()
            var next = from
            while let (type, payload) = try reader.next() {
                switch type {
                case .header, .end: throw BundleError.malformed("a second \(type) frame")
                case .leaf:
                    guard payload.count > 8 else { throw BundleError.malformed("a leaf frame without a leaf") }
                    let index = Self.u64(payload)
                    guard index == next, index < to else { throw BundleError.malformed("leaf \(index) where leaf \(next) was due (leaves must run from \(from) to \(to) once, in order)") }
                    let bytes = Array(payload[8...])
                    if index < localSize {
                        guard try txn.get(table, Self.u64Bytes(index)) == bytes else {
                            throw BundleError.refused("leaf \(index) differs from this store's: the bundle's log forks from this one")
                        }
                    } else {
                        newLeaves.append((index, bytes))
                    }
                    next += 1
                case .checkpoint: notes.append(String(decoding: payload, as: UTF8.self))
                case .record: envelopes.append(try Envelope(encoded: payload))
                case .promise:
                    do { promises.append(try IntakePromise(encoded: payload)) } catch {
                        throw BundleError.malformed("an intake promise does not decode: \(error)")
                    }
                case .chunk, .blob, .tree:
                    let kind: ObjectKind = type == .chunk ? .chunk : type == .blob ? .blob : .tree
                    let id = try ObjectStore.validate(kind, payload)
                    if try store.put(kind, id, payload, in: txn) { freshObjects.append((kind, id)) }
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
                    guard let e = try? JSONDecoder().decode(ForkEvidence.self, from: Data(payload)), e.datanet == d.hex,
                          let size = e.notes.first.flatMap({ try? Checkpoint.unverified(note: $0) })?.size else {
                        throw BundleError.malformed("fork evidence is not for this Datanet")
                    }
                    // Kept as `observe` keeps its own: under the size the notes disagree at.
                    if try !txn.contains(forks, Self.key(d, size)) { try txn.put(forks, Self.key(d, size), payload) }
                }
            }
            guard next == to else { throw BundleError.malformed("the bundle ends at leaf \(next), its header says \(to)") }
            summary.leaves = Int(to - from)
            summary.checkpoints = notes.count
            let (auditor, checkedNew) = try replay(txn, d, table: table, localSize: localSize, newLeaves: newLeaves, notes: notes)
            if let v = auditor.violations.first {
                throw BundleError.refused((v.index.map { "leaf \($0): " } ?? "") + "\(v.rule): \(v.detail)")
            }
            guard let st = auditor.state else { throw BundleError.refused("no genesis") }
            if !newLeaves.isEmpty {
                guard notes.contains(where: { (try? Checkpoint.unverified(note: $0))?.size == to }) else {
                    throw BundleError.refused("no signed checkpoint covers its last leaf \(to - 1)")
                }
                // The replay decoded and hashed every new leaf (and found none unusable): reused here.
                try appendLeaves(txn, checkedNew.map { ($0.bytes, $0.hash) }, at: localSize, table: table, log: log)
                // Content under a tombstone later in the bundle is not flagged.
                let withdrawn = Set(try checkedNew.compactMap { c -> Digest? in
                    c.leaf?.kind == .tombstone ? try c.leaf!.digest(2) : nil
                })
                for leaf in checkedNew { try indexLeaf(txn, d, leaf, withdrawn: withdrawn) }
            }
            // Contributions whose content and sidecar this import may keep, content required
            // first: the new intake leaves (unless records-only), then pending proposals.
            var live = LiveContent()
            for leaf in checkedNew where leaf.leaf?.kind == .intake {
                guard case (let e, .contribution(let c), _)? = try? leaf.records.first?.get() else { continue }
                try want(txn, d, e.id, c, into: &live, required: recordsOnly ? nil : "contribution \(e.id.hex) (leaf \(leaf.index))")
            }
            summary.promises = try keepPromises(txn, d, promises, auditor: auditor, newLeaves: checkedNew, localSize: localSize, table: table)
            if to > localSize || local == nil { try txn.put(state, d, st.encoded) }
            for note in notes {
                guard let cp = try? Checkpoint.unverified(note: note), cp.size <= st.size else { continue }
                try txn.put(checkpoints, Self.key(d, cp.size), Array(note.utf8))
            }
            for e in envelopes {
                do {
                    let record = try Record.verified(e)
                    guard record.datanet == d else { throw BundleError.refused("record \(e.id.hex) is for another Datanet") }
                    if case .contribution(let c) = record {
                        try want(txn, d, e.id, c, into: &live, required: recordsOnly ? nil : "proposal \(e.id.hex)")
                    }
                    _ = try propose(txn, e, record)
                    summary.records += 1
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
            // Contributions already in this log (a records-only import earlier) may take the
            // content and sidecars this bundle brought; nothing else may stay.
            let freshIDs = Set(freshObjects.map(\.1)), freshSidecarSet = Set(freshSidecars)
            if !freshObjects.isEmpty || !freshSidecars.isEmpty {
                try txn.scan(table) { k, v in
                    guard Self.u64(k) < localSize, let leaf = try? Leaf(encoded: Array(v)), leaf.kind == .intake,
                          let e = try? leaf.envelope(4), case .contribution(let c)? = try? Record(e),
                          freshIDs.contains(c.content) || freshSidecarSet.contains(c.sidecar) else { return true }
                    try want(txn, d, e.id, c, into: &live, required: nil)
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
            return summary
        }
    }

    /// What an import keeps: objects reached from live contributions, and their sidecars.
    struct LiveContent {
        var objects = Set<Digest>()
        var sidecars = Set<Digest>()
    }

    /// Marks what a contribution of `d` may keep: nothing when it is under a tombstone; its
    /// sidecar unless a tombstone erased that; its content unless a tombstone of `d` erased that
    /// content. With `required` (a description), the content must be here complete.
    private func want(_ txn: Transaction, _ d: Digest, _ id: Digest, _ c: Contribution, into live: inout LiveContent, required: String?) throws {
        guard try !isErased(txn, d, contribution: id) else { return }
        if try !isErased(txn, sidecar: c.sidecar) { live.sidecars.insert(c.sidecar) }
        guard try !isErased(txn, d, content: c.content) else { return }
        let complete = try store.mark(c.content, kind: c.contentKind == .blob ? .blob : .tree, in: txn, into: &live.objects)
        if let required, !complete {
            throw BundleError.refused("the content \(c.content.hex) of \(required) is missing")
        }
    }

    /// Replays this store's leaves and the bundle's new ones from the genesis, checking the
    /// stored and bundled checkpoints at their sizes; returns the auditor and the new leaves as
    /// checked (decoded, hashed, signatures verified).
    private func replay(_ txn: Transaction, _ d: Digest, table: Table, localSize: UInt64,
                        newLeaves: [(UInt64, [UInt8])], notes: [String]) throws -> (LogAuditor, [CheckedLeaf]) {
        var notesBySize = [UInt64: [String]]()
        for note in notes {
            guard let cp = try? Checkpoint.unverified(note: note) else { throw BundleError.malformed("a checkpoint note does not parse") }
            notesBySize[cp.size, default: []].append(note)
        }
        var auditor = LogAuditor(datanet: d)
        var pipeline = AuditPipeline(notes: notesBySize)
        var checkedNew = [CheckedLeaf]()
        checkedNew.reserveCapacity(newLeaves.count)
        let keepNew = { (leaf: CheckedLeaf) in if leaf.index >= localSize { checkedNew.append(leaf) } }
        var batch = [(index: UInt64, bytes: [UInt8])]()
        try txn.scan(table) { k, v in
            guard Self.u64(k) < localSize else { return false }
            batch.append((Self.u64(k), Array(v)))
            if batch.count == Self.auditBatch { try pipeline.push(batch, into: &auditor, each: keepNew); batch.removeAll(keepingCapacity: true) }
            return true
        }
        try pipeline.push(batch, into: &auditor, each: keepNew)
        for start in stride(from: 0, to: newLeaves.count, by: Self.auditBatch) {
            try pipeline.push(newLeaves[start..<min(newLeaves.count, start + Self.auditBatch)].map { (index: $0.0, bytes: $0.1) },
                              into: &auditor, each: keepNew)
        }
        try pipeline.finish(into: &auditor, each: keepNew)
        if notes.contains(where: { (try? Checkpoint.unverified(note: $0)).map { $0.size > auditor.size } ?? false }) {
            throw BundleError.refused("a checkpoint is beyond the bundle's last leaf")
        }
        return (auditor, checkedNew)
    }

    /// Checks every intake promise against the replayed log (it must name an intake leaf of this
    /// Datanet by its hash and record) and keeps those answering this store's own identities'
    /// contributions, once each is found signed by the sequencer key in force at that leaf.
    /// Returns how many were kept.
    private func keepPromises(_ txn: Transaction, _ d: Digest, _ received: [IntakePromise], auditor: LogAuditor,
                              newLeaves: [CheckedLeaf], localSize: UInt64, table: Table) throws -> Int {
        guard !received.isEmpty else { return 0 }
        let identities = IdentityStore(storeDirectory: store.directory)
        let mine = Set(identities.names().compactMap { try? identities.load($0).publicKey })
        var kept = 0
        for p in received {
            guard p.datanet == d, p.index < auditor.size else {
                throw BundleError.refused("an intake promise names leaf \(p.index) of \(p.datanet.hex.prefix(16))…, not a leaf of this log")
            }
            let (leaf, hash): (Leaf?, Digest)
            if p.index >= localSize, Int(p.index - localSize) < newLeaves.count {
                let c = newLeaves[Int(p.index - localSize)]
                (leaf, hash) = (c.leaf, c.hash)
            } else {
                let bytes = try txn.get(table, Self.u64Bytes(p.index)) ?? []
                (leaf, hash) = (try? Leaf(encoded: bytes), Merkle.leafHash(bytes))
            }
            guard let leaf, leaf.kind == .intake, hash == p.leafHash, leaf.payload[2]?.bytesValue == p.record.bytes else {
                throw BundleError.refused("the intake promise for leaf \(p.index) does not match that leaf")
            }
            guard let a = leaf.payload[1]?.bytesValue, let author = try? PublicKey(bytes: a), mine.contains(author),
                  try !txn.contains(promises, p.record) else { continue }
            guard p.sequencer == auditor.key(forSize: p.index + 1), p.isValid else {
                throw BundleError.refused("the intake promise for leaf \(p.index) is not signed by the sequencer key in force there")
            }
            try txn.put(promises, p.record, p.encoded)
            kept += 1
        }
        return kept
    }

    /// Updates this store's indexes for a leaf received from elsewhere, as sequencing it here
    /// would have: records, placement, pending, duplicates, undecided and decided, quotas.
    private func indexLeaf(_ txn: Transaction, _ d: Digest, _ checked: CheckedLeaf, withdrawn: Set<Digest>) throws {
        // The replay refused every leaf or record it could not use, so these are present.
        guard let leaf = checked.leaf else { throw BundleError.refused("leaf \(checked.index) does not decode") }
        let i = checked.index
        func record(_ k: Int) throws -> (Envelope, Record) {
            let (e, r, _) = try checked.records[k].get()
            return (e, r)
        }
        func keep(_ e: Envelope) throws {
            if try !txn.contains(records, e.id) { try txn.put(records, e.id, e.encoded) }
            if let k = try txn.get(pendingIndex, e.id), try txn.contains(pending, k) { try removePending(txn, k) }
        }
        switch leaf.kind {
        case .intake:
            let (e, r) = try record(0)
            guard case .contribution(let c) = r else { return }
            try keep(e)
            try txn.put(placed, e.id, d.bytes + Self.u64Bytes(i))
            // Curators reviewing in this store see the same flags the proposer's store computed.
            if !withdrawn.contains(e.id) { try flagNearDuplicate(txn, e.id, c, intakeIndex: i) }
            let contentKey = d.bytes + c.content.bytes
            guard try !txn.contains(contents, contentKey) else { return } // a duplicate: its decision follows
            try txn.put(contents, contentKey, e.id)
            try txn.put(undecided, Self.key(d, i), e.id.bytes + Self.u64Bytes(c.size) + c.author.bytes)
            let quotaKey = d.bytes + c.author.bytes
            let (n, b) = try txn.withValue(meta, quotaKey) { (Self.u64($0), Self.u64($0, at: 8)) } ?? (0, 0)
            // The replay held every author within quota, so these cannot overflow; saturate anyway.
            let bytes = b.addingReportingOverflow(c.size)
            try txn.put(meta, quotaKey, Self.u64Bytes(n &+ 1) + Self.u64Bytes(bytes.overflow ? .max : bytes.partialValue))
        case .decision:
            let intake = try leaf.unsigned(2)
            try txn.put(decided, Self.key(d, intake), Self.u64Bytes(i))
            if let (size, author) = try txn.withValue(undecided, Self.key(d, intake), { (Self.u64($0, at: 32), Array($0[40...])) }) {
                try txn.delete(undecided, Self.key(d, intake))
                let quotaKey = d.bytes + author
                let (n, b) = try txn.withValue(meta, quotaKey) { (Self.u64($0), Self.u64($0, at: 8)) } ?? (0, 0)
                try txn.put(meta, quotaKey, Self.u64Bytes(n - min(1, n)) + Self.u64Bytes(b - min(size, b)))
            }
            for k in checked.records.indices {
                guard case (let e, .review(let r)) = try record(k) else { continue }
                if try !txn.contains(records, e.id) { try txn.put(records, e.id, e.encoded) }
                if try r.contributions.allSatisfy({ try decision(txn, $0) != nil }),
                   let k = try txn.get(pendingIndex, e.id), try txn.contains(pending, k) { try removePending(txn, k) }
            }
        case .policy, .setSequencer, .continuation:
            let (e, _) = try record(0)
            try keep(e)
            try txn.put(placed, e.id, d.bytes + Self.u64Bytes(i))
        case .tombstone:
            let (e, r) = try record(0)
            guard case .tombstone(let t) = r, let (intake, c) = try tombstoneTarget(txn, d, t) else { return }
            try keep(e)
            try txn.put(placed, e.id, d.bytes + Self.u64Bytes(i))
            try applyTombstone(txn, d, intake: intake, leaf: i, contribution: c, id: t.contribution)
        }
    }
}
