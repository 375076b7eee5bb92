/// A CBOR data item of the deterministic subset Datanet uses (RFC 8949 §4.2.1): unsigned and
/// negative integers, byte and text strings, arrays, maps, false, true and null.
/// No floats, no tags, no indefinite lengths, no other simple values.
public indirect enum CBOR: Hashable, Sendable {
    /// Major type 0.
    case unsigned(UInt64)
    /// Major type 1: the value is −1 − n.
    case negative(UInt64)
    /// Major type 2.
    case bytes([UInt8])
    /// Major type 3, held as its UTF-8 bytes (compared byte for byte, never normalized).
    case text([UInt8])
    /// Major type 4.
    case array([CBOR])
    /// Major type 5; entries in canonical order once decoded or encoded.
    case map([MapEntry])
    /// Simple values false and true.
    case bool(Bool)
    /// Simple value null.
    case null

    /// One key/value pair of a map.
    public struct MapEntry: Hashable, Sendable {
        public var key: CBOR
        public var value: CBOR
        public init(_ key: CBOR, _ value: CBOR) { self.key = key; self.value = value }
    }

    /// A text item from a Swift string (its UTF-8 bytes).
    public static func string(_ s: String) -> CBOR { .text(Array(s.utf8)) }

    /// The integer value if this is an unsigned integer.
    public var unsignedValue: UInt64? { if case .unsigned(let v) = self { return v } else { return nil } }
    /// The value as an Int64 if this is an integer that fits one (checked, never traps).
    public var int64Value: Int64? {
        switch self {
        case .unsigned(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        case .negative(let n): return n <= UInt64(Int64.max) ? -1 - Int64(n) : nil
        default: return nil
        }
    }
    /// The bytes if this is a byte string.
    public var bytesValue: [UInt8]? { if case .bytes(let v) = self { return v } else { return nil } }
    /// The elements if this is an array.
    public var arrayValue: [CBOR]? { if case .array(let v) = self { return v } else { return nil } }
}
