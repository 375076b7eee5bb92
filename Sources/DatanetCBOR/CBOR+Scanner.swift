extension CBOR {
    /// A pull reader over borrowed bytes for hot paths that need a few fields of a known shape:
    /// no tree and no allocation. Heads are read with the decoder's own rules (shortest form,
    /// no indefinite lengths, floats or tags, lengths within the input), so every item it
    /// accepts the full decoder accepts too; the caller states the shape it expects and any
    /// other item is an error.
    public struct Scanner {
        var reader: Reader

        /// A scanner at the start of `bytes`, which must outlive it.
        public init(_ bytes: UnsafeRawBufferPointer) { reader = Reader(buf: bytes) }

        /// The offset of the next item.
        public var offset: Int { reader.pos }

        /// True when every byte has been read.
        public var isAtEnd: Bool { reader.pos == reader.buf.count }

        /// Reads the head of an item of major type `major`; returns its argument.
        mutating func expect(_ major: UInt8) throws(CBORError) -> UInt64 {
            let start = reader.pos
            let (m, arg) = try reader.head()
            guard m == major else { throw CBORError(.unexpectedType, at: start) }
            return arg
        }

        /// An unsigned integer.
        public mutating func unsigned() throws(CBORError) -> UInt64 { try expect(0) }

        /// An integer of either sign that fits in Int64 (nil for one that does not).
        public mutating func int64() throws(CBORError) -> Int64? {
            let start = reader.pos
            let (m, arg) = try reader.head()
            switch m {
            case 0: return arg <= UInt64(Int64.max) ? Int64(arg) : nil
            case 1: return arg <= UInt64(Int64.max) ? -1 - Int64(arg) : nil
            default: throw CBORError(.unexpectedType, at: start)
            }
        }

        /// The head of an array; returns its element count (bounded by the bytes left).
        public mutating func arrayCount() throws(CBORError) -> Int {
            let start = reader.pos
            return try reader.length(try expect(4), at: start)
        }

        /// The head of a map; returns its entry count (bounded by the bytes left).
        public mutating func mapCount() throws(CBORError) -> Int {
            let start = reader.pos
            return try reader.length(try expect(5), at: start)
        }

        /// A byte string's contents, borrowed from the input.
        public mutating func bytes() throws(CBORError) -> UnsafeRawBufferPointer {
            let start = reader.pos
            let n = try reader.length(try expect(2), at: start)
            defer { reader.pos += n }
            return UnsafeRawBufferPointer(rebasing: reader.buf[reader.pos..<reader.pos + n])
        }

        /// A text string's contents (checked to be UTF-8), borrowed from the input.
        public mutating func text() throws(CBORError) -> UnsafeRawBufferPointer {
            let start = reader.pos
            let n = try reader.length(try expect(3), at: start)
            let body = UnsafeRawBufferPointer(rebasing: reader.buf[reader.pos..<reader.pos + n])
            guard CBOR.isUTF8(body) else { throw CBORError(.invalidUTF8, at: start) }
            reader.pos += n
            return body
        }

        /// Skips one whole item, checking it as the decoder would (returns the bytes it spans).
        @discardableResult
        public mutating func skip() throws(CBORError) -> UnsafeRawBufferPointer {
            let start = reader.pos
            try reader.validate(depth: 0)
            return UnsafeRawBufferPointer(rebasing: reader.buf[start..<reader.pos])
        }

        /// Consumes a null if one is next; false (and nothing consumed) otherwise.
        public mutating func null() -> Bool {
            guard reader.pos < reader.buf.count, reader.buf[reader.pos] == 0xf6 else { return false }
            reader.pos += 1
            return true
        }

        /// Checks that `bytes` is exactly one canonical item, by the decoder's rules and with
        /// its errors, without building it.
        public static func validate(_ bytes: UnsafeRawBufferPointer) throws(CBORError) {
            var r = Reader(buf: bytes)
            try r.validate(depth: 0)
            guard r.pos == bytes.count else { throw CBORError(.trailingBytes, at: r.pos) }
        }
    }
}
