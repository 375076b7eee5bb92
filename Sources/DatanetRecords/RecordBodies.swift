import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// The policy in force for a Datanet: who owns, sequences, curates, contributes and reads,
/// and the quotas. Held whole in the genesis and in every `policy` record.
public struct PolicyState: Hashable, Sendable {
    public var name: String
    public var owner: PublicKey
    public var sequencer: PublicKey
    /// Curators, sorted by key bytes.
    public var curators: [PublicKey]
    /// Accepting reviews needed: 1 ≤ quorum ≤ curators.
    public var quorum: UInt64
    /// Who may contribute; nil means anyone (an open Datanet).
    public var contributors: [PublicKey]?
    /// Who may read; nil means everyone (a public Datanet).
    public var readers: [PublicKey]?
    /// Per-author limits on pending proposals and their bytes.
    public var maxPendingProposals: UInt64
    public var maxPendingBytes: UInt64
    /// Who may register models besides the owner and the curators, sorted (field 10, absent
    /// when empty, so states made before it keep their bytes).
    public var builders: [PublicKey]

    public init(name: String, owner: PublicKey, sequencer: PublicKey, curators: [PublicKey], quorum: UInt64,
                contributors: [PublicKey]?, readers: [PublicKey]?, maxPendingProposals: UInt64 = 100,
                maxPendingBytes: UInt64 = 1 << 30, builders: [PublicKey] = []) {
        self.builders = builders.sortedByBytes()
        self.name = name; self.owner = owner; self.sequencer = sequencer
        self.curators = curators.sortedByBytes(); self.quorum = quorum
        self.contributors = contributors?.sortedByBytes(); self.readers = readers?.sortedByBytes()
        self.maxPendingProposals = maxPendingProposals; self.maxPendingBytes = maxPendingBytes
    }

    package var item: CBOR {
        var b = BodyBuilder()
        b.set(1, .string(name))
        b.set(2, .bytes(owner.bytes))
        b.set(3, .bytes(sequencer.bytes))
        b.set(4, sortedList(curators.map(\.bytes)))
        b.set(5, .unsigned(quorum))
        b.set(6, contributors.map { sortedList($0.map(\.bytes)) } ?? .null)
        b.set(7, readers.map { sortedList($0.map(\.bytes)) } ?? .null)
        b.set(8, .unsigned(maxPendingProposals))
        b.set(9, .unsigned(maxPendingBytes))
        if !builders.isEmpty { b.set(10, sortedList(builders.map(\.bytes))) }
        return b.item
    }

    package init(fields: BodyFields) throws(RecordError) {
        var f = fields
        name = try f.text(1, "name", maxBytes: 256)
        owner = try f.publicKey(2, "owner")
        sequencer = try f.publicKey(3, "sequencer")
        curators = try f.sortedSet(4, "curators")!.map { try! PublicKey(bytes: $0) }
        quorum = try f.uint(5, "quorum")
        contributors = try f.sortedSet(6, "contributors", nullable: true)?.map { try! PublicKey(bytes: $0) }
        readers = try f.sortedSet(7, "readers", nullable: true)?.map { try! PublicKey(bytes: $0) }
        maxPendingProposals = try f.uint(8, "max pending proposals")
        maxPendingBytes = try f.uint(9, "max pending bytes")
        let named = try f.sortedSet(10, "builders", optional: true)
        // An empty list is written by leaving the field out: one encoding per state.
        guard named?.isEmpty != true else { throw .malformed("policy state field 10 (builders) is an empty list; none is written by leaving it out") }
        builders = (named ?? []).map { try! PublicKey(bytes: $0) }
        try f.finish()
        guard !name.isEmpty else { throw .malformed("policy state has an empty name") }
        guard !curators.isEmpty, quorum >= 1, quorum <= UInt64(curators.count) else {
            throw .malformed("quorum \(quorum) is not between 1 and the \(curators.count) curator(s)")
        }
    }
}

extension PolicyState {
    /// Refuses a state naming a key that could sign for anyone or for no one (small order,
    /// mixed order or a non-canonical encoding: schema/contexts.md "Ed25519").
    package func checkKeysUsable(_ kind: String) throws(RecordError) {
        let roles: [(String, [PublicKey])] = [("owner", [owner]), ("sequencer", [sequencer]), ("curator", curators),
                                               ("contributor", contributors ?? []), ("reader", readers ?? []), ("builder", builders)]
        for (role, keys) in roles {
            if let bad = keys.first(where: { !$0.isUsable }) {
                throw .malformed("\(kind) names \(role) key \(bad), which is of small order or not canonical")
            }
        }
    }
}

extension Array where Element == PublicKey {
    package func sortedByBytes() -> [PublicKey] {
        Array(Set(self)).sorted()
    }
}

/// `genesis`: creates a Datanet; its id is the Datanet's id. Signed by the owner.
public struct Genesis: Hashable, Sendable {
    public var policy: PolicyState
    /// Advisory creation time, Unix milliseconds.
    public var createdAt: UInt64
    /// Random bytes, so two Datanets with the same policy have different ids.
    public var nonce: [UInt8]

    public init(policy: PolicyState, createdAt: UInt64, nonce: [UInt8]) {
        self.policy = policy; self.createdAt = createdAt; self.nonce = nonce
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(1, policy.item)
        b.set(2, .unsigned(createdAt))
        b.set(3, .bytes(nonce))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "genesis")
        policy = try PolicyState(fields: try f.fields(1, "policy", kind: "policy state"))
        createdAt = try f.uint(2, "created-at")
        nonce = try f.bytes(3, "nonce", count: 16, wrong: "genesis nonce is not 16 bytes")
        try f.finish()
    }
}

/// `review`: a curator's verdict on one or more contributions. Signed by the reviewer.
public struct Review: Hashable, Sendable {
    public var datanet: DatanetID
    public var reviewer: PublicKey
    /// Contribution ids, sorted and unique.
    public var contributions: [RecordID]
    public var accept: Bool
    public var reason: String
    /// Unix milliseconds when the curator signed it (field 5; absent in reviews made before it
    /// existed, which count as created at 0). Which of one curator's reviews counts: `isLater`.
    public var createdAt: UInt64?

    public init(datanet: DatanetID, reviewer: PublicKey, contributions: [RecordID], accept: Bool, reason: String, createdAt: UInt64? = nil) {
        self.datanet = datanet; self.reviewer = reviewer
        self.contributions = Array(Set(contributions)).sorted(); self.accept = accept; self.reason = reason
        self.createdAt = createdAt
    }

    /// Whether review `a` supersedes review `b` of the same curator (schema/curation.md): the
    /// later created-at wins, and between equal ones the greater record id. Sequencer, audit and
    /// `status` all decide by this one rule, so one curator's reviews arriving from two stores
    /// in any order count the same everywhere.
    public static func isLater(_ a: (createdAt: UInt64, id: RecordID), than b: (createdAt: UInt64, id: RecordID)) -> Bool {
        a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id > b.id
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(reviewer.bytes))
        b.set(2, sortedList(contributions.map(\.bytes)))
        b.set(3, .unsigned(accept ? 1 : 0))
        b.set(4, .string(reason))
        if let createdAt { b.set(5, .unsigned(createdAt)) }
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "review")
        datanet = try f.id(0, "datanet")
        reviewer = try f.publicKey(1, "reviewer")
        let ids = try f.sortedSet(2, "contributions")!
        guard !ids.isEmpty else { throw .malformed("review names no contribution") }
        contributions = ids.map { RecordID(bytes: $0)! }
        accept = try f.uint(3, "verdict", max: 1) == 1
        reason = try f.text(4, "reason", maxBytes: 4096)
        createdAt = try f.optional(5, wrong: "review field 5 (created-at) is not an unsigned integer") { s throws(CBORError) in try s.unsigned() }
        try f.finish()
    }
}

/// `policy`: the full policy state that follows `previous` (the id of the policy record or
/// genesis it replaces). Signed by the owner or by a quorum of the curators in force.
public struct PolicyChange: Hashable, Sendable {
    public var datanet: DatanetID
    public var previous: RecordID
    public var state: PolicyState
    /// A one-line human summary ("remove curator …").
    public var summary: String

    public init(datanet: DatanetID, previous: RecordID, state: PolicyState, summary: String) {
        self.datanet = datanet; self.previous = previous; self.state = state; self.summary = summary
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(previous.bytes))
        b.set(2, state.item)
        b.set(3, .string(summary))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "policy")
        datanet = try f.id(0, "datanet")
        previous = try f.id(1, "previous policy")
        state = try PolicyState(fields: try f.fields(2, "state", kind: "policy state"))
        summary = try f.text(3, "summary", maxBytes: 1024)
        try f.finish()
    }
}

/// `set-sequencer`: hands sequencing to a new key at the next leaf. Owner or curator quorum.
extension Record {
    /// The (size, root) a key handoff names as the log it takes over: a continuation's, or a
    /// set-sequencer's that binds one. Nil for other records.
    public var takesOver: (size: UInt64, root: Digest)? {
        switch self {
        case .continuation(let c): (c.size, c.root)
        case .setSequencer(let h): h.takesOver
        default: nil
        }
    }
}

public struct SetSequencer: Hashable, Sendable {
    public var datanet: DatanetID
    public var previous: RecordID
    public var sequencer: PublicKey
    /// The log the new key takes over (fields 3 and 4): a size at most the handoff leaf's index
    /// and the root at that size, so the new key cannot rewrite what came before. Nil only in
    /// records written before handoffs bound a root (still read, verified as taken on trust).
    public var takesOverSize: UInt64?
    public var takesOverRoot: Digest?

    public init(datanet: DatanetID, previous: RecordID, sequencer: PublicKey, takesOver: (size: UInt64, root: Digest)?) {
        self.datanet = datanet; self.previous = previous; self.sequencer = sequencer
        (takesOverSize, takesOverRoot) = (takesOver?.size, takesOver?.root)
    }

    /// The (size, root) the new key takes over from, if the record binds one.
    public var takesOver: (size: UInt64, root: Digest)? {
        guard let takesOverSize, let takesOverRoot else { return nil }
        return (takesOverSize, takesOverRoot)
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(previous.bytes))
        b.set(2, .bytes(sequencer.bytes))
        if let t = takesOver {
            b.set(3, .unsigned(t.size))
            b.set(4, .bytes(t.root.bytes))
        }
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "set-sequencer")
        datanet = try f.id(0, "datanet")
        previous = try f.id(1, "previous policy")
        sequencer = try f.publicKey(2, "sequencer")
        takesOverSize = try f.optional(3, wrong: "set-sequencer field 3 (size taken over) is not an unsigned integer") { s throws(CBORError) in try s.unsigned() }
        if takesOverSize != nil {
            takesOverRoot = try f.digest(4, "root taken over")
        } else {
            takesOverRoot = nil
        }
        try f.finish()
    }
}

/// `continuation`: the owner names the last good (size, root) and a new sequencer key after
/// the old one was lost.
public struct Continuation: Hashable, Sendable {
    public var datanet: DatanetID
    public var size: UInt64
    public var root: Digest
    public var sequencer: PublicKey

    public init(datanet: DatanetID, size: UInt64, root: Digest, sequencer: PublicKey) {
        self.datanet = datanet; self.size = size; self.root = root; self.sequencer = sequencer
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .unsigned(size))
        b.set(2, .bytes(root.bytes))
        b.set(3, .bytes(sequencer.bytes))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "continuation")
        datanet = try f.id(0, "datanet")
        size = try f.uint(1, "size")
        root = try f.digest(2, "root")
        sequencer = try f.publicKey(3, "sequencer")
        try f.finish()
    }
}

/// A decoded record: the envelope and its typed body.
public enum Record: Sendable {
    case genesis(Genesis), contribution(Contribution), review(Review), policy(PolicyChange)
    case setSequencer(SetSequencer), continuation(Continuation), tombstone(Tombstone), model(ModelRecord)
    case attribution(AttributionRecord), valuation(ValuationRecord)

    /// Decodes the body of `envelope` by its kind.
    public init(_ envelope: Envelope) throws(RecordError) {
        switch envelope.kind {
        case .genesis: self = .genesis(try Genesis(body: envelope.body))
        case .contribution: self = .contribution(try Contribution(body: envelope.body))
        case .review: self = .review(try Review(body: envelope.body))
        case .policy: self = .policy(try PolicyChange(body: envelope.body))
        case .setSequencer: self = .setSequencer(try SetSequencer(body: envelope.body))
        case .continuation: self = .continuation(try Continuation(body: envelope.body))
        case .tombstone: self = .tombstone(try Tombstone(body: envelope.body))
        case .model: self = .model(try ModelRecord(body: envelope.body))
        case .attribution: self = .attribution(try AttributionRecord(body: envelope.body))
        case .valuation: self = .valuation(try ValuationRecord(body: envelope.body))
        }
    }

    /// Refuses a genesis, policy, set-sequencer or continuation record that names an unusable
    /// key for any role (`PolicyState.checkKeysUsable`). Checked where records enter a store
    /// (creation, proposal, the replay of every import and audit), not on every decode: each
    /// key costs a point check of about 45 µs, and receipts decode the genesis on every verify.
    package func checkKeysUsable() throws(RecordError) {
        switch self {
        case .genesis(let g): try g.policy.checkKeysUsable("genesis")
        case .policy(let p): try p.state.checkKeysUsable("policy")
        case .setSequencer(let s):
            guard s.sequencer.isUsable else { throw .malformed("set-sequencer names key \(s.sequencer), which is of small order or not canonical") }
        case .continuation(let c):
            guard c.sequencer.isUsable else { throw .malformed("continuation names key \(c.sequencer), which is of small order or not canonical") }
        case .contribution, .review, .tombstone, .model, .attribution, .valuation: break // their keys must sign them, which an unusable key never does
        }
    }

    /// The Datanet the record belongs to; nil for a genesis, whose own id is the Datanet's.
    public var datanet: DatanetID? {
        switch self {
        case .genesis: nil
        case .contribution(let c): c.datanet
        case .review(let r): r.datanet
        case .policy(let p): p.datanet
        case .setSequencer(let s): s.datanet
        case .continuation(let c): c.datanet
        case .tombstone(let t): t.datanet
        case .model(let m): m.datanet
        case .attribution(let a): a.datanet
        case .valuation(let v): v.datanet
        }
    }
}

extension Record {
    /// The key whose signature the record must carry by itself (the author's, the reviewer's,
    /// the owner's for a genesis); nil for kinds whose signers depend on the policy in force.
    public var requiredSigner: PublicKey? {
        switch self {
        case .genesis(let g): g.policy.owner
        case .contribution(let c): c.author
        case .review(let r): r.reviewer
        case .model(let m): m.builder
        case .attribution(let a): a.signer
        case .valuation(let v): v.signer
        case .policy, .setSequencer, .continuation, .tombstone: nil
        }
    }

    /// Decodes `envelope`, verifies every signature on it, and checks that the key the record
    /// names as its signer did sign. Policy-dependent signers are checked by the ledger rules.
    public static func verified(_ envelope: Envelope) throws(RecordError) -> Record {
        try verifiedWithSigners(envelope).record
    }

    /// `verified`, also returning every (valid) signer.
    public static func verifiedWithSigners(_ envelope: Envelope) throws(RecordError) -> (record: Record, signers: [PublicKey]) {
        let record = try Record(envelope)
        let signers = try envelope.verifiedSigners()
        if let required = record.requiredSigner, !signers.contains(required) {
            throw .missingSignature("\(envelope.kind.rawValue) must be signed by \(required)")
        }
        return (record, signers)
    }
}
