import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// What a node knows of one Datanet's log: its size and the policy in force (cached in the
/// `state` table; derivable from the log).
public struct DatanetState: Sendable {
    public var id: Digest
    public var size: UInt64
    /// Index and leaf hash of the latest policy leaf: what every new leaf cites.
    public var policyIndex: UInt64
    public var policyLeafHash: Digest
    /// Id of the genesis or policy record in force: what the next policy record must name.
    public var policyRecord: Digest
    public var policy: PolicyState

    package var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(id.bytes))
        b.set(1, .unsigned(size))
        b.set(2, .unsigned(policyIndex))
        b.set(3, .bytes(policyLeafHash.bytes))
        b.set(4, .bytes(policyRecord.bytes))
        b.set(5, policy.item)
        return b.encoded
    }

    package init(id: Digest, size: UInt64, policyIndex: UInt64, policyLeafHash: Digest, policyRecord: Digest, policy: PolicyState) {
        self.id = id; self.size = size; self.policyIndex = policyIndex; self.policyLeafHash = policyLeafHash
        self.policyRecord = policyRecord; self.policy = policy
    }

    package init(encoded: [UInt8]) throws(RecordError) {
        var f = try BodyFields(encoded, kind: "state")
        id = try f.digest(0, "datanet")
        size = try f.uint(1, "size")
        policyIndex = try f.uint(2, "policy index")
        policyLeafHash = try f.digest(3, "policy leaf")
        policyRecord = try f.digest(4, "policy record")
        policy = try PolicyState(item: try f.item(5, "policy"))
        try f.finish()
    }
}

/// Why the ledger refused an operation, in words a user can act on.
public enum LedgerRefusal: Error, Equatable, CustomStringConvertible {
    case unknownDatanet(String)
    case wrongDatanet(record: String, names: String)
    case notAllowed(String)
    case alreadyTaken(String)
    case stalePolicy(names: String, inForce: String)
    case quorumNotMet(String)
    case notSequencer(String)
    case overQuota(String)
    /// A field longer than its format allows.
    case tooLong(field: String, bytes: Int, maximum: Int)
    /// An author the policy in force does not allow to contribute.
    case notAContributor(author: String, datanet: String)
    /// A reviewer who is not a curator in force.
    case notACurator(reviewer: String, datanet: String)
    /// A review naming no contribution.
    case nothingToReview
    /// A policy change the policy in force already has.
    case policyUnchanged(String)
    /// A quorum outside 1…curators.
    case badQuorum(quorum: UInt64, curators: Int)
    case record(RecordError)
    /// The store has never held a ledger (a read-only open finds none of its tables).
    case noLedger

    public var description: String {
        switch self {
        case .noLedger: return "this store holds no Datanets yet (create one with `datanet create`)"
        case .unknownDatanet(let d): return "no Datanet \(d) in this store"
        case .wrongDatanet(let r, let d): return "record \(r) belongs to Datanet \(d), not this one"
        case .notAllowed(let why): return why
        case .alreadyTaken(let why): return why
        case .stalePolicy(let n, let f): return "policy change names previous policy \(n), but \(f) is in force"
        case .quorumNotMet(let why): return why
        case .notSequencer(let why): return why
        case .overQuota(let why): return why
        case .tooLong(let field, let bytes, let maximum): return "the \(field) takes \(bytes) bytes; at most \(maximum) are allowed"
        case .notAContributor(let a, let d): return "author \(a) may not contribute to \(d)"
        case .notACurator(let r, let d): return "reviewer \(r) is not a curator of \(d)"
        case .nothingToReview: return "a review names at least one contribution"
        case .policyUnchanged(let change): return "`\(change)` changes nothing: the policy in force already has it"
        case .badQuorum(let q, let n): return "the change would leave quorum \(q) with \(n) curator(s)"
        case .record(let e): return "\(e)"
        }
    }
}
