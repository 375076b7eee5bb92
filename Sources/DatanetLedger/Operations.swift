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
    public func contribute(to d: Digest, paths: [(path: String, node: SourceNode)], fields: ContributionFields, author: SigningKey,
                           createdAt: UInt64, progress: ((UInt64) -> Void)? = nil) throws -> [(envelope: Envelope, added: AddResult)] {
        let st = try state(of: d)
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
            for r in added {
                let name = r.path.split(separator: "/").last.map(String.init) ?? r.path
                // The default label loses the control characters a file name may hold, which labels may not.
                let label = fields.label ?? String(String.UnicodeScalarView(name.unicodeScalars.map { TextRules.isControl($0) ? "?" : $0 }))
                let side = Sidecar(label: label, fileName: name, metadata: fields.metadata)
                let sample = r.kind == .blob && fields.mediaType == nil ? try self.store.blobBytes(r.id, limit: MinHash.maximumText, in: txn) : nil
                let c = Contribution(datanet: d, author: author.publicKey, content: r.id, contentKind: r.kind == .tree ? .tree : .blob, size: r.size,
                                     mediaType: fields.mediaType ?? MediaType.guess(fileName: name, isFolder: r.kind == .tree, sample: sample),
                                     license: fields.license ?? "NOASSERTION", sidecar: side.hash, createdAt: createdAt)
                var e = Envelope(kind: .contribution, body: c.body)
                try e.sign(with: author)
                // Decoded as any other node would decode it: what is proposed here is valid there.
                let record = try Record.verified(e)
                _ = try self.storeSidecar(txn, side)
                _ = try self.propose(txn, e, record)
                made.append((e, r))
            }
        }
        _ = try ingest.add(plans: paths)
        return made
    }

    /// Proposes `reviewer`'s verdict on contributions of `d`.
    public func review(_ d: Digest, contributions: [Digest], accept: Bool, reason: String, by reviewer: SigningKey) throws -> Envelope {
        let st = try state(of: d)
        guard !contributions.isEmpty else { throw LedgerRefusal.nothingToReview }
        try TextRules.checkSingleLine(reason, field: "reason")
        guard st.policy.mayReview(reviewer.publicKey) else {
            throw LedgerRefusal.notACurator(reviewer: reviewer.publicKey.description, datanet: st.policy.name)
        }
        var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: reviewer.publicKey, contributions: contributions,
                                                     accept: accept, reason: reason).body)
        try e.sign(with: reviewer)
        try propose(e)
        return e
    }

    /// Proposes a withdrawal (by the author) or a takedown (owner or curators) of a contribution.
    public func tombstone(_ d: Digest, contribution: Digest, takedown: Bool, reason: String, by signer: SigningKey) throws -> Envelope {
        _ = try state(of: d)
        try TextRules.checkSingleLine(reason, field: "reason")
        var e = Envelope(kind: .tombstone, body: Tombstone(datanet: d, contribution: contribution, takedown: takedown, reason: reason).body)
        try e.sign(with: signer)
        try propose(e)
        return e
    }

    /// Proposes a policy change on top of the policy in force, signed by `signer`; it takes
    /// force when sequenced with the owner's signature or a curator quorum.
    public func proposePolicy(_ d: Digest, summary: String, by signer: SigningKey, _ change: (inout PolicyState) throws -> Void) throws -> Envelope {
        let st = try state(of: d)
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

    /// Proposes handing the sequencer role to `key`.
    public func proposeSequencer(_ d: Digest, key: PublicKey, by signer: SigningKey) throws -> Envelope {
        let st = try state(of: d)
        var e = Envelope(kind: .setSequencer, body: SetSequencer(datanet: d, previous: st.policyRecord, sequencer: key).body)
        try e.sign(with: signer)
        try propose(e)
        return e
    }
}
