import DatanetObjects
/// Why a ledger operation failed, worded for the person who has to act on it.
public enum LedgerError: Error, Equatable, CustomStringConvertible {
    /// The stored log is inconsistent with itself.
    case corruptLog(String)
    /// A proof was asked for sizes or an index the log cannot have.
    case proofRange(String)
    /// A stored value of the wrong shape: the table, the key (hex) and what is wrong.
    case corruptEntry(table: String, key: String, why: String)

    public var description: String {
        switch self {
        case .corruptLog(let why): return "log is damaged: \(why)"
        case .proofRange(let why): return why
        case .corruptEntry(let table, let key, let why):
            return "store is damaged: table '\(table)', key \(key.prefix(80)): \(why) (run datanet fsck)"
        }
    }
}
