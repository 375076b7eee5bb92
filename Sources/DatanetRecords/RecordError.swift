import DatanetCBOR
import DatanetObjects

/// Why bytes are not a valid record, named so a user can tell a forgery from a format mistake.
public enum RecordError: Error, Equatable, CustomStringConvertible {
    /// Not canonical CBOR.
    case cbor(CBORError)
    /// Canonical CBOR, but not the shape the schema requires.
    case malformed(String)
    /// A record version this build does not know.
    case unsupportedVersion(UInt64)
    /// A kind outside schema/records.cddl.
    case unknownKind(String)
    /// A log leaf of a kind this build does not know (a newer node's log).
    case unknownLeafKind(UInt64)
    /// A signature that does not verify under the record's context.
    case badSignature(publicKey: String)
    /// A signature by a key the rules do not accept for this record.
    case missingSignature(String)

    public var description: String {
        switch self {
        case .cbor(let e): return "record is not canonical CBOR: \(e)"
        case .malformed(let why): return "malformed record: \(why)"
        case .unsupportedVersion(let v): return "record version \(v) is not supported (this build reads version 1)"
        case .unknownKind(let k): return "unknown record kind '\(k)'"
        case .unknownLeafKind(let k): return "leaf kind \(k) is unknown to this build of datanet (it reads kinds 1-7); upgrade to read this log"
        case .badSignature(let key): return "signature by \(key) does not verify"
        case .missingSignature(let why): return "record is not signed as required: \(why)"
        }
    }
}
