import DatanetObjects

/// Why the ledger refused an operation: one case per rule, carrying what a caller needs to
/// match on or act on; `description` words it for the person who has to act. Damage to the
/// store is not a refusal (`LedgerError`).
public enum LedgerRefusal: Error, Equatable, CustomStringConvertible {
    /// The store has never held a ledger (a read-only open finds none of its tables).
    case noLedger
    case unknownDatanet(String)
    /// A name or id prefix that matches several Datanets.
    case ambiguousDatanet(String, matches: Int)
    case datanetExists(String)
    case wrongDatanet(record: String, names: String)
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
    case notPending(record: String)
    /// A contribution not (yet) taken into a log here.
    case notInLog(record: String)
    case stalePolicy(names: String, inForce: String)
    /// A policy change without the owner's signature or a quorum of the curators in force.
    case quorumNotMet(curators: Int, quorum: UInt64)
    /// A record without the signatures its kind needs (a continuation, a withdrawal, a takedown).
    case unauthorized(kind: String, needs: String)
    /// An author over the undecided-proposal quota (count and claimed bytes before this one).
    case overQuota(author: String, count: UInt64, bytes: UInt64)
    /// A record kind that is not sequenced from pending.
    case notSequenced(kind: String)
    /// A contribution already withdrawn or taken down.
    case alreadyTombstoned(contribution: String)
    /// A policy change the policy in force already has.
    case policyUnchanged(String)
    /// A quorum outside 1…curators.
    case badQuorum(quorum: UInt64, curators: Int)
    /// A key that is not the sequencer this needs.
    case notSequencer(key: String, sequencer: String)
    /// Another process holds the Datanet's sequencer lock (or it cannot be opened).
    case sequencerBusy(path: String, why: String)
    /// This store is behind a checkpoint its own sequencer key signed (restored from a backup?).
    case storeBehind(signed: UInt64, held: UInt64)
    /// The log changed size while an operation ran.
    case logMoved(expected: UInt64, found: UInt64)
    /// A continuation names a size and root that are not this log's last state.
    case notLastState(size: UInt64, held: UInt64)
    /// No checkpoint (of that size, if given) is held here.
    case noCheckpoint(datanet: String, size: UInt64?)
    /// A size beyond what this store holds.
    case beyondLog(size: UInt64, held: UInt64)
    /// A contribution's content is not in this store.
    case contentMissing(content: String)
    /// A checkpoint from elsewhere that is not signed by the key in force or does not parse.
    case checkpointRefused(String)
    case record(RecordError)

    public var description: String {
        switch self {
        case .noLedger: "this store holds no Datanets yet (create one with `datanet create`)"
        case .unknownDatanet(let d): "no Datanet \(d) in this store"
        case .ambiguousDatanet(let text, let n): "'\(text)' names \(n) Datanets; give more of the id"
        case .datanetExists(let d): "Datanet \(d) already exists here"
        case .wrongDatanet(let r, let d): "record \(r) belongs to Datanet \(d), not this one"
        case .controlCharacter(let field, let scalar):
            "the \(field) holds the control character U+\(String(scalar, radix: 16, uppercase: true).leftPadded(4)); "
                + "names, labels, licenses, media types, metadata and reasons are single-line text"
        case .tooLong(let field, let bytes, let maximum): "the \(field) takes \(bytes) bytes; at most \(maximum) are allowed"
        case .notAContributor(let a, let d): "author \(a) may not contribute to \(d)"
        case .notACurator(let r, let d): "reviewer \(r) is not a curator of \(d)"
        case .nothingToReview: "a review names at least one contribution"
        case .notProposable(let why): why
        case .alreadyTaken(let r, let pending): "record \(r) is already \(pending ? "pending" : "in the log")"
        case .notPending(let r): "record \(r) is not pending here"
        case .notInLog(let r): "contribution \(r) is not in a log here (still pending?)"
        case .stalePolicy(let n, let f): "policy change names previous policy \(n), but \(f) is in force"
        case .quorumNotMet(let c, let q): "policy change lacks a quorum: \(c) curator signature(s), \(q) needed, or the owner's"
        case .unauthorized(let kind, let needs): "a \(kind) needs \(needs)"
        case .overQuota(let a, let n, let b): "author \(a) is over quota (\(n) undecided, \(b) bytes)"
        case .notSequenced(let kind): "\(kind) records are not sequenced from pending"
        case .alreadyTombstoned(let c): "contribution \(c) is already withdrawn or taken down"
        case .policyUnchanged(let change): "`\(change)` changes nothing: the policy in force already has it"
        case .badQuorum(let q, let n): "the change would leave quorum \(q) with \(n) curator(s)"
        case .notSequencer(let key, let sequencer): "key \(key) is not the sequencer (that is \(sequencer))"
        case .sequencerBusy(let path, let why): "cannot sequence: \(why) (\(path))"
        case .storeBehind(let signed, let held):
            "a checkpoint signed by this sequencer key is at size \(signed), beyond this log (\(held)): this store is behind (restored from a backup?); refusing to sequence"
        case .logMoved(let expected, let found): "the log changed while sequencing (size \(expected) → \(found))"
        case .notLastState(let size, let held): "the continuation names size \(size) and a root that are not this log's last state (size \(held))"
        case .noCheckpoint(let d, let size):
            size.map { "no checkpoint of size \($0) is held here (`datanet log` lists the log)" } ?? "no checkpoint of \(d) is held here"
        case .beyondLog(let size, let held): "size \(size) is beyond the \(held) leaves held here"
        case .contentMissing(let c): "the content \(c) of a contribution is not in this store; export with --records-only"
        case .checkpointRefused(let why): "checkpoint refused: \(why)"
        case .record(let e): "\(e)"
        }
    }
}
