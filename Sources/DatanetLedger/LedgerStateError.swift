import DatanetRecords

/// Why this store cannot do what was asked in its present state, as opposed to a rule the
/// request breaks (`LedgerRefusal`): it does not hold what was named (a ledger, a Datanet, a
/// checkpoint, a pending record, content), or its log is not where the operation needs it
/// (behind a checkpoint it signed, moved while sequencing, locked by another sequencer).
public enum LedgerStateError: Error, Equatable, CustomStringConvertible {
    /// The store has never held a ledger (a read-only open finds none of its tables).
    case noLedger
    case unknownDatanet(String)
    /// A name or id prefix that matches several Datanets.
    case ambiguousDatanet(String, matches: Int)
    case datanetExists(String)
    case notPending(record: String)
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
    /// `export --update` was pointed at a folder that is not an export of this Datanet.
    case notAnExport(String, datanet: String)

    public var description: String {
        switch self {
        case .noLedger: "this store holds no Datanets yet (create one with `datanet create`)"
        case .notAnExport(let dir, let d): "\(dir) is not an export of Datanet \(d.prefix(16))… (no MANIFEST.jsonl and CHECKPOINT of it); `datanet export` makes one"
        case .unknownDatanet(let d): "no Datanet \(d) in this store"
        case .ambiguousDatanet(let text, let n): "'\(text)' names \(n) Datanets; give more of the id"
        case .datanetExists(let d): "Datanet \(d) already exists here"
        case .notPending(let r): "record \(r) is not pending here"
        case .sequencerBusy(let path, let why): "cannot sequence: \(why) (\(path))"
        case .storeBehind(let signed, let held):
            "a checkpoint signed by this sequencer key is at size \(signed), beyond this log (\(held)): this store is behind (restored from a backup?); refusing to sequence"
        case .logMoved(let expected, let found): "the log changed while sequencing (size \(expected) → \(found))"
        case .notLastState(let size, let held): "the continuation names size \(size) and a root that are not this log's last state (size \(held))"
        case .noCheckpoint(let d, let size):
            size.map { "no checkpoint of size \($0) is held here (`datanet log` lists the log)" } ?? "no checkpoint of \(d) is held here"
        case .beyondLog(let size, let held): "size \(size) is beyond the \(held) leaves held here"
        case .contentMissing(let c): "the content \(c) of a contribution is not in this store; export with --records-only"
        }
    }
}
