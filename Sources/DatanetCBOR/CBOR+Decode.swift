extension CBOR {
    /// The canonical rules the decoder enforces, each named once (RFC 8949 §4.2.1 and Datanet's subset).
    public enum Rules {
        /// Deepest allowed nesting of arrays and maps.
        public static let maximumDepth = 32
        /// Integers and lengths must use the shortest head.
        public static let minimalIntegerEncodingRequired = true
        /// Map keys must be sorted bytewise by their encodings, with no duplicates.
        public static let mapKeysMustBeSortedBytewise = true
        /// Indefinite-length strings, arrays and maps are rejected.
        public static let indefiniteLengthAllowed = false
    }

    /// Decodes exactly one canonical item that spans all of `bytes`.
    /// - Throws: `CBORError` naming the first rule broken.
    public static func decode(_ bytes: [UInt8]) throws(CBORError) -> CBOR {
        let result = bytes.withUnsafeBytes { buf in
            Result { () throws(CBORError) -> CBOR in
                var reader = Reader(buf: buf)
                let item = try reader.item(depth: 0)
                guard reader.pos == buf.count else { throw CBORError(.trailingBytes, at: reader.pos) }
                return item
            }
        }
        return try result.get()
    }

    /// Whether text bytes are UTF-8. Most text is ASCII, checked eight bytes at a time; the
    /// rest goes through the standard library's check.
    public static func isUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 8 <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < bytes.count, bytes[i] < 0x80 { i += 1 }
        return i == bytes.count || String(validating: bytes, as: UTF8.self) != nil
    }

    struct Reader {
        let buf: UnsafeRawBufferPointer
        var pos = 0

        mutating func byte() throws(CBORError) -> UInt8 {
            guard pos < buf.count else { throw CBORError(.truncated, at: pos) }
            defer { pos += 1 }
            return buf[pos]
        }

        /// Reads a head; returns (major, argument). Rejects non-minimal and reserved forms.
        mutating func head() throws(CBORError) -> (UInt8, UInt64) {
            let start = pos
            let initial = try byte()
            let major = initial >> 5
            let info = initial & 0x1f
            switch info {
            case 0..<24: return (major, UInt64(info))
            case 24, 25, 26, 27:
                let n = 1 << Int(info - 24)
                guard buf.count - pos >= n else { throw CBORError(.truncated, at: pos) }
                var v: UInt64 = 0
                for _ in 0..<n { v = v << 8 | UInt64(buf[pos]); pos += 1 }
                let minimum: UInt64 = info == 24 ? 24 : 1 << (8 << (info - 25))  // 24, 2^8, 2^16, 2^32
                if major == 7 {
                    // Floats (and the two-byte simple form) are outside the subset.
                    if info == 24 { throw CBORError(.simpleValueNotAllowed, at: start) }
                    throw CBORError(.floatNotAllowed, at: start)
                }
                guard v >= minimum else { throw CBORError(.nonMinimalInteger, at: start) }
                return (major, v)
            case 31: throw CBORError(major == 7 ? .simpleValueNotAllowed : .indefiniteLength, at: start)
            default: throw CBORError(.reservedAdditionalInfo, at: start)
            }
        }

        mutating func length(_ v: UInt64, at start: Int) throws(CBORError) -> Int {
            // Checked: a length larger than what is left can never be satisfied.
            guard v <= UInt64(buf.count - pos) else { throw CBORError(.lengthTooLarge, at: start) }
            return Int(v)
        }

        mutating func item(depth: Int) throws(CBORError) -> CBOR {
            let start = pos
            let (major, arg) = try head()
            switch major {
            case 0: return .unsigned(arg)
            case 1:
                // −1 − arg must fit an Int64: −2^64 … −2^63 − 1 are refused, not left to trap later.
                guard arg <= UInt64(Int64.max) else { throw CBORError(.negativeOutOfRange, at: start) }
                return .negative(arg)
            case 2, 3:
                let n = try length(arg, at: start)
                let bytes = Array(buf[pos..<pos + n])
                pos += n
                if major == 2 { return .bytes(bytes) }
                guard bytes.withUnsafeBytes(CBOR.isUTF8) else { throw CBORError(.invalidUTF8, at: start) }
                return .text(bytes)
            case 4, 5:
                guard depth < Rules.maximumDepth else { throw CBORError(.tooDeep, at: start) }
                // Every element takes at least one byte: bounds the count before allocating.
                let n = try length(arg, at: start)
                if major == 4 {
                    var items = [CBOR]()
                    items.reserveCapacity(n)
                    for _ in 0..<n { items.append(try item(depth: depth + 1)) }
                    return .array(items)
                }
                var entries = [MapEntry]()
                var previousKey: UnsafeRawBufferPointer.SubSequence?
                for _ in 0..<n {
                    let keyStart = pos
                    let key = try item(depth: depth + 1)
                    let keyBytes = buf[keyStart..<pos]
                    if let prev = previousKey {
                        if prev.elementsEqual(keyBytes) { throw CBORError(.duplicateMapKey, at: keyStart) }
                        if !prev.lexicographicallyPrecedes(keyBytes) { throw CBORError(.unsortedMapKeys, at: keyStart) }
                    }
                    previousKey = keyBytes
                    entries.append(MapEntry(key, try item(depth: depth + 1)))
                }
                return .map(entries)
            case 6: throw CBORError(.tagNotAllowed, at: start)
            default:
                switch arg {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22: return .null
                default: throw CBORError(.simpleValueNotAllowed, at: start)
                }
            }
        }

        /// Checks one item by exactly the rules of `item(depth:)` without building it: the same
        /// input is accepted, or refused with the same error at the same offset.
        mutating func validate(depth: Int) throws(CBORError) {
            let start = pos
            let (major, arg) = try head()
            switch major {
            case 0: return
            case 1: guard arg <= UInt64(Int64.max) else { throw CBORError(.negativeOutOfRange, at: start) }
            case 2, 3:
                let n = try length(arg, at: start)
                let body = UnsafeRawBufferPointer(rebasing: buf[pos..<pos + n])
                pos += n
                if major == 3, !CBOR.isUTF8(body) { throw CBORError(.invalidUTF8, at: start) }
            case 4, 5:
                guard depth < Rules.maximumDepth else { throw CBORError(.tooDeep, at: start) }
                let n = try length(arg, at: start)
                if major == 4 {
                    for _ in 0..<n { try validate(depth: depth + 1) }
                    return
                }
                var previousKey: Range<Int>?
                for _ in 0..<n {
                    let keyStart = pos
                    try validate(depth: depth + 1)
                    if let prev = previousKey {
                        let a = buf[prev], b = buf[keyStart..<pos]
                        if a.elementsEqual(b) { throw CBORError(.duplicateMapKey, at: keyStart) }
                        if !a.lexicographicallyPrecedes(b) { throw CBORError(.unsortedMapKeys, at: keyStart) }
                    }
                    previousKey = keyStart..<pos
                    try validate(depth: depth + 1)
                }
            case 6: throw CBORError(.tagNotAllowed, at: start)
            default: guard (20...22).contains(arg) else { throw CBORError(.simpleValueNotAllowed, at: start) }
            }
        }
    }
}
