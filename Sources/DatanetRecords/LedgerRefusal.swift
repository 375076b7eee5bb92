import DatanetObjects

/// Why the ledger refused an operation: one case per rule, carrying what a caller needs to
/// match on or act on; `description` words it for the person who has to act. Damage to the
/// store is not a refusal (`LedgerError`), nor is a store that lacks what was named or whose
/// log is not where the operation needs it (`LedgerStateError`).
public enum LedgerRefusal: Error, Equatable, CustomStringConvertible {
    case wrongDatanet(record: String, names: String)
    /// A `policy` record that names another sequencer (only set-sequencer and continuation may).
    case policyChangesSequencer
    /// Text that reaches terminals and files holds a control character (the scalar's value).
    case controlCharacter(field: String, scalar: UInt32)
    /// A field longer than its format allows.
    case tooLong(field: String, bytes: Int, maximum: Int)
    /// An author the policy in force does not allow to contribute.
    case notAContributor(author: String, datanet: String)
    /// A reviewer who is not a curator in force.
    case notACurator(reviewer: String, datanet: String)
    /// A review naming no contribution.
    case nothingToReview
    /// A record that cannot be proposed as given (a genesis, or a contribution not naming its sidecar).
    case notProposable(String)
    /// A record already in the log, or already pending.
    case alreadyTaken(record: String, pending: Bool)
    /// A contribution not (yet) taken into a log here.
    case notInLog(record: String)
    /// A review of a contribution already decided (reviews change nothing after the decision leaf).
    case alreadyDecided(contribution: String, leaf: UInt64)
    case stalePolicy(names: String, inForce: String)
    /// A set-sequencer naming a log (size, root) this one is not, or none at all.
    case handoffNamesAnotherLog(String)
    /// A policy change without the owner's signature or a quorum of the curators in force.
    case quorumNotMet(curators: Int, quorum: UInt64)
    /// A record without the signatures its kind needs (a continuation, a withdrawal, a takedown).
    case unauthorized(kind: String, needs: String)
    /// An author over the undecided-proposal quota (count and claimed bytes before this one).
    case overQuota(author: String, count: UInt64, bytes: UInt64)
    /// A record kind that is not sequenced from pending.
    case notSequenced(kind: String)
    /// The store's queue bound (`max-queued-bytes`) would be passed: nothing more is queued
    /// until the sequencer takes some in.
    case queueFull(queued: UInt64, adding: UInt64, bound: UInt64)
    /// The store's queue holds as many records as its bound allows.
    case queueFullOfRecords(held: Int, bound: Int)
    /// A contribution already withdrawn or taken down.
    case alreadyTombstoned(contribution: String)
    /// A policy change the policy in force already has.
    case policyUnchanged(String)
    /// A quorum outside 1…curators.
    case badQuorum(quorum: UInt64, curators: Int)
    /// A key that is not the sequencer this needs.
    case notSequencer(key: String, sequencer: String)
    /// A checkpoint from elsewhere that is not signed by the key in force or does not parse.
    case checkpointRefused(String)
    /// The record is in this store's refused set (a contribution that expired here).
    case expired(record: String)
    /// A model record signed by a key that may not register models.
    case notABuilder(key: String, datanet: String)
    /// A model record naming a checkpoint that is not of this log (or not yet held here).
    case modelNamesAnotherLog(String)
    case record(RecordError)

    public var description: String {
        switch self {
        case .wrongDatanet(let r, let d): "record \(r) belongs to Datanet \(d), not this one"
        case .policyChangesSequencer: "a policy change cannot change the sequencer; hand it over with `datanet policy D set-sequencer KEY`"
        case .controlCharacter(let field, let scalar):
            "the \(field) holds the control character U+\(String(scalar, radix: 16, uppercase: true).leftPadded(4)); "
                + "names, labels, licenses, media types, metadata and reasons are single-line text"
        case .tooLong(let field, let bytes, let maximum): "the \(field) takes \(bytes) bytes; at most \(maximum) are allowed"
        case .notAContributor(let a, let d): "author \(a) may not contribute to \(d)"
        case .notACurator(let r, let d): "reviewer \(r) is not a curator of \(d)"
        case .nothingToReview: "a review names at least one contribution"
        case .notProposable(let why): why
        case .alreadyTaken(let r, let pending): "record \(r) is already \(pending ? "pending" : "in the log")"
        case .queueFull(let q, let a, let b):
            "this store's queue holds \(q) bytes of contributions waiting; \(a) more would pass its bound of \(b) (setting max-queued-bytes): sequence, or raise the bound"
        case .queueFullOfRecords(let held, let bound):
            "this store's queue already holds \(held) records waiting, its bound of \(bound) (setting max-queued-records): sequence, or raise the bound"
        case .notInLog(let r): "contribution \(r) is not in a log here (still pending?)"
        case .alreadyDecided(let c, let leaf): "contribution \(c) was decided at leaf \(leaf); a review now changes nothing"
        case .stalePolicy(let n, let f): "policy change names previous policy \(n), but \(f) is in force"
        case .handoffNamesAnotherLog(let why): "set-sequencer refused: \(why)"
        case .quorumNotMet(let c, let q): "policy change lacks a quorum: \(c) curator signature(s), \(q) needed, or the owner's"
        case .unauthorized(let kind, let needs): "a \(kind) needs \(needs)"
        case .overQuota(let a, let n, let b): "author \(a) is over quota (\(n) undecided, \(b) bytes)"
        case .notSequenced(let kind): "\(kind) records are not sequenced from pending"
        case .alreadyTombstoned(let c): "contribution \(c) is already withdrawn or taken down"
        case .policyUnchanged(let change): "`\(change)` changes nothing: the policy in force already has it"
        case .badQuorum(let q, let n): "the change would leave quorum \(q) with \(n) curator(s)"
        case .notSequencer(let key, let sequencer): "key \(key) is not the sequencer (that is \(sequencer))"
        case .checkpointRefused(let why): "checkpoint refused: \(why)"
        case .expired(let r): "record \(r) expired here (past the node's --proposal-max-age) and is not taken again"
        case .notABuilder(let k, let d): "key \(k) may not register models in \(d): only the owner, a curator or a builder (`datanet policy D add-builder KEY`)"
        case .modelNamesAnotherLog(let why): "model refused: \(why)"
        case .record(let e): "\(e)"
        }
    }
}
