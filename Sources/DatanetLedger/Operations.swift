import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What a contributor gives beside the files; nil fields take their defaults (the file name
/// for the label, NOASSERTION for the license, a guess from name and bytes for the media type).
public struct ContributionFields: Sendable {
    public var label: String?
    public var license: String?
    public var mediaType: String?
    public var metadata: [String: String]

    public init(label: String? = nil, license: String? = nil, mediaType: String? = nil, metadata: [String: String] = [:]) {
        self.label = label; self.license = license; self.mediaType = mediaType; self.metadata = metadata
    }
}

/// The ledger's operations on a Datanet, as a user asks for them: each checks everything it can
/// refuse before it writes anything, so a refusal leaves the store byte for byte as it was. The
/// CLI only parses and prints.
extension Ledger {
    /// Stores files and folders and proposes one contribution per path, signed by `author`: the
    /// proposals (records, sidecars, pending entries) commit in the same transaction as the last
    /// of the content, so a contribution never exists without its content nor content without
    /// its contribution (but for an interrupted add's unreferenced chunks, which gc frees).
    public func contribute(to d: DatanetID, paths: [(path: String, node: SourceNode)], fields: ContributionFields, author: SigningKey,
                           createdAt: UInt64, progress: ((UInt64) -> Void)? = nil) throws -> [(envelope: Envelope, added: AddResult)] {
        let st = try reader.state(of: d)
        for (field, value) in [("label", fields.label), ("license", fields.license), ("media type", fields.mediaType)] {
            if let value { try TextRules.checkSingleLine(value, field: field) }
        }
        for (k, v) in fields.metadata { try TextRules.checkSingleLine(k + "=" + v, field: "metadata") }
        if let m = fields.mediaType, m.utf8.count > Contribution.maximumMediaType {
            throw LedgerRefusal.tooLong(field: "media type", bytes: m.utf8.count, maximum: Contribution.maximumMediaType)
        }
        if let l = fields.license, l.utf8.count > Contribution.maximumLicense {
            throw LedgerRefusal.tooLong(field: "license", bytes: l.utf8.count, maximum: Contribution.maximumLicense)
        }
        // A file name adds at most 765 bytes to the sidecar: 255 bytes of name, each written %XX at worst.
        let room = Sidecar(label: fields.label ?? "", fileName: String(repeating: "%", count: 765), metadata: fields.metadata).encoded.count
        guard room <= Sidecar.maximumSize else {
            throw LedgerRefusal.tooLong(field: "label and metadata", bytes: room - 765, maximum: Sidecar.maximumSize - 765)
        }
        guard st.policy.mayContribute(author.publicKey) else {
            throw LedgerRefusal.notAContributor(author: author.publicKey.description, datanet: st.policy.name)
        }
        var made = [(envelope: Envelope, added: AddResult)]()
        let ingest = Ingest(store: store)
        ingest.progress = progress
        ingest.beforeCommit = { txn, added in
            made = []
            let st = try self.state(txn, d)
            var bands = BandsAdded()
            // A slice at a time (at most 1,024 contributions or 64 MiB of text): what the
            // transaction must read is read here, signing, the check every node makes and the
            // near-duplicate sketch run on every core, then the writes go in order.
            var start = 0
            while start < added.count {
                var drafts = [(added: AddResult, sidecar: Sidecar, contribution: Contribution, text: String?)]()
                var textBytes = 0
                while start < added.count && drafts.count < 1024 && textBytes < 64 << 20 {
                    let r = added[start]
                    start += 1
                    let name = r.path.split(separator: "/").last.map(String.init) ?? r.path
                    // The default label loses the control characters a file name may hold, which labels may not.
                    let label = fields.label ?? String(String.UnicodeScalarView(name.unicodeScalars.map { TextRules.isControl($0) ? "?" : $0 }))
                    let side = Sidecar(label: label, fileName: name, metadata: fields.metadata)
                    let sample = r.kind == .blob && fields.mediaType == nil ? try self.store.blobBytes(r.id, limit: MinHash.maximumText, in: txn) : nil
                    // The text the near-duplicate check reads (the bytes decide, never the media type).
                    let text = r.kind != .blob ? nil : fields.mediaType == nil ? sample.flatMap { String(validating: $0, as: UTF8.self) }
                        : try self.store.blobText(r.id, limit: MinHash.maximumText, in: txn)
                    textBytes += text?.utf8.count ?? 0
                    let c = Contribution(datanet: d, author: author.publicKey, content: r.id, contentKind: r.kind == .tree ? .tree : .blob, size: r.size,
                                         mediaType: fields.mediaType ?? MediaType.guess(fileName: name, isFolder: r.kind == .tree, sample: sample),
                                         license: fields.license ?? "NOASSERTION", sidecar: side.hash, createdAt: createdAt)
                    drafts.append((r, side, c, text))
                }
                let signed = try Parallel.map(drafts, grain: 16) { draft -> (Envelope, Record, TextSketch?) in
                    var e = Envelope(kind: .contribution, body: draft.contribution.body)
                    try e.sign(with: author)
                    // Decoded as any other node would decode it: what is proposed here is valid there.
                    return (e, try Record.verified(e), draft.text.flatMap { TextSketch($0, datanet: d) })
                }
                var probes = [NearDuplicateProbe]()
                for (draft, (e, record, sketch)) in zip(drafts, signed) {
                    _ = try self.storeSidecar(txn, draft.sidecar)
                    let id = try self.propose(txn, e, record, in: st, flagging: false)
                    probes.append(NearDuplicateProbe(id: id, contribution: draft.contribution, sketch: sketch))
                    made.append((e, draft.added))
                }
                // As flagging each in turn would: each sees the index and the run's earlier ones.
                try self.flagNearDuplicates(txn, probes, added: &bands)
            }
        }
        _ = try ingest.add(plans: paths)
        return made
    }

    /// Proposes `reviewer`'s verdict on contributions of `d`, signed as created at `createdAt`
    /// (Unix milliseconds; the later of one curator's reviews counts).
    public func review(_ d: DatanetID, contributions: [RecordID], accept: Bool, reason: String, createdAt: UInt64,
                       by reviewer: SigningKey) throws -> Envelope {
        let st = try reader.state(of: d)
        guard !contributions.isEmpty else { throw LedgerRefusal.nothingToReview }
        try TextRules.checkSingleLine(reason, field: "reason")
        guard st.policy.mayReview(reviewer.publicKey) else {
            throw LedgerRefusal.notACurator(reviewer: reviewer.publicKey.description, datanet: st.policy.name)
        }
        // A review you give names only what it can still change.
        try env.read { txn in
            for c in contributions { if let leaf = try decision(txn, c) { throw LedgerRefusal.alreadyDecided(contribution: c.hex, leaf: leaf) } }
        }
        var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: reviewer.publicKey, contributions: contributions,
                                                     accept: accept, reason: reason, createdAt: createdAt).body)
        try e.sign(with: reviewer)
        try propose(e)
        return e
    }

    /// Proposes a withdrawal (by the author) or a takedown (owner or curators) of a contribution.
    public func tombstone(_ d: DatanetID, contribution: RecordID, takedown: Bool, reason: String, by signer: SigningKey) throws -> Envelope {
        _ = try reader.state(of: d)
        try TextRules.checkSingleLine(reason, field: "reason")
        var e = Envelope(kind: .tombstone, body: Tombstone(datanet: d, contribution: contribution, takedown: takedown, reason: reason).body)
        try e.sign(with: signer)
        try propose(e)
        return e
    }

    /// Proposes registering a model (`record`, its builder's key signing it): it is sequenced as a
    /// model leaf of the record's Datanet.
    public func registerModel(_ record: ModelRecord, by builder: SigningKey) throws -> Envelope {
        _ = try reader.state(of: record.datanet)
        try TextRules.checkSingleLine(record.name, field: "model name")
        var e = Envelope(kind: .model, body: record.body)
        try e.sign(with: builder)
        try propose(e)
        return e
    }

    /// Keeps a signed attribution or valuation record in this store (they are results, not
    /// sequenced): verified, for a Datanet held here, within the envelope bound. Keeping one
    /// already held changes nothing.
    public func keep(result envelope: Envelope) throws {
        let record = try Record.verified(envelope)
        switch record {
        case .attribution, .valuation: break
        default: throw LedgerRefusal.notProposable("only attribution and valuation records are kept this way")
        }
        _ = try reader.state(of: record.datanet!)
        let bytes = envelope.encoded
        guard bytes.count <= Envelope.maximumSize(of: envelope.kind) else {
            throw LedgerRefusal.record(.malformed("envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize(of: envelope.kind))"))
        }
        try env.write { txn in if try !txn.contains(records, envelope.id) { try txn.put(records, envelope.id, bytes) } }
    }

    /// Proposes a policy change on top of the policy in force, signed by `signer`; it takes
    /// force when sequenced with the owner's signature or a curator quorum.
    public func proposePolicy(_ d: DatanetID, summary: String, by signer: SigningKey, _ change: (inout PolicyState) throws -> Void) throws -> Envelope {
        let st = try reader.state(of: d)
        var next = st.policy
        try change(&next)
        guard next != st.policy else { throw LedgerRefusal.policyUnchanged(summary) }
        guard !next.curators.isEmpty, next.quorum >= 1, next.quorum <= UInt64(next.curators.count) else {
            throw LedgerRefusal.badQuorum(quorum: next.quorum, curators: next.curators.count)
        }
        var e = Envelope(kind: .policy, body: PolicyChange(datanet: d, previous: st.policyRecord, state: next, summary: summary).body)
        try e.sign(with: signer)
        try propose(e)
        return e
    }

    /// Proposes handing the sequencer role to `key`, binding the log as this store holds it
    /// (its size and root): the new key takes over from there and cannot rewrite it.
    public func proposeSequencer(_ d: DatanetID, key: PublicKey, by signer: SigningKey) throws -> Envelope {
        let st = try reader.state(of: d)
        let log = try merkleLog(d)
        let root = try env.read { txn in try log.root(txn, size: st.size) }
        var e = Envelope(kind: .setSequencer, body: SetSequencer(datanet: d, previous: st.policyRecord, sequencer: key,
                                                                 takesOver: (st.size, root)).body)
        try e.sign(with: signer)
        try propose(e)
        return e
    }

    // MARK: Proposals (every operation above ends here)

    /// Takes a signed record into this node's pending set after checking it: canonical, signed
    /// as its kind requires, for a Datanet this store follows, not already pending or placed.
    @discardableResult
    public func propose(_ envelope: Envelope) throws -> RecordID {
        try env.write { txn in try propose(txn, envelope, try Record.verified(envelope)) }
    }

    /// Proposes many records in one transaction (all or none), verifying signatures and
    /// sketching text on the other cores while this thread writes.
    public func propose(all envelopes: [Envelope]) throws {
        try env.write { txn in
            var states = [DatanetID: DatanetState]() // proposals never change a Datanet's state
            var added = BandsAdded()
            // The pure work (signatures, and the near-duplicate sketch of text already stored
            // with the band entries it shares, read in the snapshot before this transaction)
            // runs on the other cores, slices ahead of this writer, which only looks up and
            // writes (and adds what the snapshot could not see: `added`).
            try Parallel.pipeline(envelopes, chunk: 256, { slice in
                try self.env.read { snapshot in
                    try slice.map { e -> (Record, TextSketch?) in
                        let r = try Record.verified(e)
                        guard case .contribution(let c) = r, c.contentKind == .blob else { return (r, nil) }
                        return (r, try self.sketch(committed: snapshot, c))
                    }
                }
            }, consume: { checked, range in
                var probes = [NearDuplicateProbe]()
                for (e, (r, sketch)) in zip(envelopes[range], checked) {
                    guard let d = r.datanet else { throw LedgerRefusal.notProposable("a genesis is created, not proposed") }
                    if states[d] == nil { states[d] = try state(txn, d) }
                    let id = try propose(txn, e, r, in: states[d]!, flagging: false)
                    if case .contribution(let c) = r { probes.append(NearDuplicateProbe(id: id, contribution: c, sketch: sketch)) }
                }
                try flagNearDuplicates(txn, probes, added: &added)
            })
        }
    }

    func propose(_ txn: Transaction, _ envelope: Envelope, _ record: Record, sketch: TextSketch? = nil) throws -> RecordID {
        guard let d = record.datanet else { throw LedgerRefusal.notProposable("a genesis is created, not proposed") }
        return try propose(txn, envelope, record, in: try state(txn, d), sketch: sketch)
    }

    /// The one proposal path: `st` is the state of the record's Datanet in `txn`. A batch
    /// flags near-duplicates itself, a slice at a time (`flagging: false`); `sketch` is the
    /// sketch of a contribution's text when the caller made it already (as the text arrived).
    func propose(_ txn: Transaction, _ envelope: Envelope, _ record: Record, in st: DatanetState, flagging: Bool = true,
                 sketch: TextSketch? = nil) throws -> RecordID {
        let d = st.id
        let id = envelope.id
        if case .review(let r) = record, !st.policy.mayReview(r.reviewer) {
            throw LedgerRefusal.notACurator(reviewer: r.reviewer.description, datanet: st.policy.name)
        }
        if case .policy(let p) = record, !st.policy.keepsSequencer(p.state) { throw LedgerRefusal.policyChangesSequencer }
        // A handoff must bind the log it takes over; checked here when this store holds that far
        // (a store behind the owner's takes it, and the sequencer checks it again).
        if case .setSequencer(let h) = record, h.takesOver.map({ $0.size <= st.size }) ?? true,
           let why = try handoffProblem(txn, h, log: try merkleLog(d), size: st.size, exact: false) {
            throw LedgerRefusal.handoffNamesAnotherLog(why)
        }
        switch record {
        case .attribution, .valuation: throw LedgerRefusal.notProposable("\(envelope.kind.rawValue) records are kept where they are made (`keep`), not sequenced")
        default: break
        }
        if case .model(let m) = record {
            guard st.policy.mayBuild(m.builder) else { throw LedgerRefusal.notABuilder(key: m.builder.description, datanet: st.policy.name) }
            // Checked here when this store holds that far; the sequencer checks it again, exactly.
            if let why = try modelProblem(txn, m, log: try merkleLog(d), size: st.size, exact: false) {
                throw LedgerRefusal.modelNamesAnotherLog(why)
            }
        }
        try record.checkKeysUsable()
        if case .contribution(let c) = record, !st.policy.mayContribute(c.author) {
            throw LedgerRefusal.notAContributor(author: c.author.description, datanet: st.policy.name)
        }
        // A record in the log is a replay, except a review still naming an undecided
        // contribution: it still counts (cited where its leaf is), so a store that received
        // the log from elsewhere — a new sequencer — keeps it pending.
        if try txn.contains(placed, id) {
            guard case .review(let r) = record, try r.contributions.contains(where: { try decision(txn, $0) == nil }) else {
                throw LedgerRefusal.alreadyTaken(record: id.hex, pending: false)
            }
        }
        if try isPending(txn, id) { throw LedgerRefusal.alreadyTaken(record: id.hex, pending: true) }
        if let refused, try txn.contains(refused, id) { throw LedgerRefusal.expired(record: id.hex) }
        // A review all of whose contributions are decided here can change nothing: refused (a
        // relayed one naming some still undecided is taken, as it still counts for those).
        if case .review(let r) = record, let first = r.contributions.first, let leaf = try decision(txn, first),
           try r.contributions.dropFirst().allSatisfy({ try decision(txn, $0) != nil }) {
            throw LedgerRefusal.alreadyDecided(contribution: first.hex, leaf: leaf)
        }
        // Only signatures that can count are kept; policy records may gather more after they
        // are first proposed: keep the union.
        var stored = try countable(txn, envelope, record, st.policy)
        if let old = try txn.get(records, id) { stored = try Envelope(encoded: old).merging(stored) }
        let bytes = stored.encoded
        guard bytes.count <= Envelope.maximumSize(of: envelope.kind) else {
            throw LedgerRefusal.record(.malformed("envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize(of: envelope.kind))"))
        }
        try checkQueuedRecords(txn)
        if case .contribution(let c) = record { try addQueued(txn, c.size) }
        try txn.put(records, id, bytes)
        if flagging, case .contribution(let c) = record { try flagNearDuplicate(txn, id, c, sketch: sketch) }
        let seq = try nextSequence(txn)
        // The record rides along in the queue, so sequencing reads it in arrival order.
        try txn.put(pending, BigEndian.key(d, seq), id.bytes + bytes)
        try txn.put(pendingIndex, id, BigEndian.key(d, seq))
        try bytes.withUnsafeBytes { try addPendingItem(txn, d, Self.pendingItem(id, envelope: $0)) }
        return id
    }

    /// Adds signatures to a record already pending (a curator quorum collecting on a policy).
    public func addSignatures(_ envelope: Envelope) throws {
        _ = try envelope.verifiedSigners()
        try env.write { txn in
            guard try mergeSignatures(txn, envelope) != nil else {
                throw LedgerStateError.notPending(record: envelope.id.hex)
            }
        }
    }

    /// Merges the signatures of `envelope` (already verified) into the pending copy of its
    /// record; returns how many were new, or nil when the record is not pending here.
    func mergeSignatures(_ txn: Transaction, _ envelope: Envelope) throws -> Int? {
        guard let old = try txn.get(records, envelope.id), try isPending(txn, envelope.id) else { return nil }
        let held = try Envelope(encoded: old)
        let record = try Record(held)
        guard let d = record.datanet else { return nil }
        // A copy whose signatures hold no role adds nothing (and refuses nothing: the copy
        // held already carries what authorizes it).
        let merged = try held.merging(try countable(txn, envelope, record, try state(txn, d).policy, refusingNone: false))
        let added = merged.signatures.count - held.signatures.count
        guard added > 0 else { return 0 }
        let bytes = merged.encoded
        guard bytes.count <= Envelope.maximumSize(of: envelope.kind) else {
            throw LedgerRefusal.record(.malformed("envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize(of: envelope.kind))"))
        }
        try txn.put(records, envelope.id, bytes)
        if let k = try txn.get(pendingIndex, envelope.id) { try txn.put(pending, k, envelope.id.bytes + bytes) }
        return added
    }

    /// `envelope` with only the signatures that can count for `record` under `policy`
    /// (`PolicyState.mayCountSignature`; a tombstone's withdrawn author is looked up here).
    /// Refused when none is left (unless `refusingNone` is false): nothing could ever authorize it.
    func countable(_ txn: Transaction, _ envelope: Envelope, _ record: Record, _ policy: PolicyState, refusingNone: Bool = true) throws -> Envelope {
        var author: PublicKey?
        if case .tombstone(let t) = record, let bytes = try txn.get(records, t.contribution),
           case .contribution(let c)? = try? Record(Envelope(encoded: bytes)) { author = c.author }
        let kept = envelope.keepingSignatures { policy.mayCountSignature(by: $0, on: record, author: author) }
        guard !kept.signatures.isEmpty || !refusingNone else {
            throw LedgerRefusal.unauthorized(kind: envelope.kind.rawValue, needs: "a signature by a key that holds a role for it in the policy in force")
        }
        return kept
    }

    static let pendingSequenceKey = Array("pending-seq".utf8)

    func nextSequence(_ txn: Transaction) throws -> UInt64 {
        let k = Self.pendingSequenceKey
        let n: UInt64 = try txn.withValue(meta, k) { v -> UInt64 in try LogIndex.check(v, 8, meta.name, k); return BigEndian.u64(v) } ?? 0
        try txn.put(meta, k, BigEndian.bytes(n + 1))
        return n
    }
}
