import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// Strict reading of a record body: a map with small unsigned-integer keys, every field of the
/// right type, and no field the schema does not name.
///
/// Reads straight from the bytes, without building a CBOR tree: the whole item is first checked
/// by the decoder's canonical rules (so a malformed body fails with the same `CBORError` as
/// before any field is read), then fields are read in increasing key order, as canonical maps
/// store them. A key passed over unread is unknown and refused by `finish`.
package struct BodyFields {
    private let bytes: [UInt8]
    private let kind: String
    /// Offset of the next entry's key, and how many entries are left.
    private var pos: Int
    private var remaining: Int
    /// The first key passed over unread (the smallest unknown one).
    private var unknown: UInt64?

    package init(_ body: [UInt8], kind: String) throws(RecordError) {
        do { try body.withUnsafeBytes { try CBOR.Scanner.validate($0) } } catch let e as CBORError { throw .cbor(e) } catch { throw .malformed("\(error)") }
        try self.init(validated: body, at: 0, kind: kind)
    }

    /// A map at `offset` of bytes the decoder's rules already accepted.
    private init(validated bytes: [UInt8], at offset: Int, kind: String) throws(RecordError) {
        (self.bytes, self.kind) = (bytes, kind)
        guard let head = try? Self.scan(bytes, at: offset, { s throws(CBORError) in try s.mapCount() }) else {
            throw .malformed("\(kind) body is not a map")
        }
        let (count, first) = head
        (pos, remaining) = (first, count)
        // Every key is an integer: checked before any field, as a whole-map decode would.
        var at = first
        for _ in 0..<count {
            guard let entry = try? Self.scan(bytes, at: at, { s throws(CBORError) in _ = try s.unsigned(); try s.skip() }) else {
                throw .malformed("\(kind) has a non-integer field key")
            }
            at = entry.1
        }
    }

    /// Runs `body` on a scanner at `offset`; returns its result and the offset it reached.
    private static func scan<R>(_ bytes: [UInt8], at offset: Int, _ body: (inout CBOR.Scanner) throws(CBORError) -> R) throws(CBORError) -> (R, Int) {
        let result = bytes.withUnsafeBytes { buf in
            Result { () throws(CBORError) -> (R, Int) in
                var s = CBOR.Scanner(UnsafeRawBufferPointer(rebasing: buf[offset...]))
                let value = try body(&s)
                return (value, offset + s.offset)
            }
        }
        return try result.get()
    }

    /// Moves to field `key`'s value: its offset, or nil when the map has no such field.
    private mutating func seek(_ key: UInt64) -> Int? {
        while remaining > 0, let entry = try? Self.scan(bytes, at: pos, { s throws(CBORError) in try s.unsigned() }) {
            let (k, valueAt) = entry
            if k > key { return nil }
            remaining -= 1
            if k == key { return valueAt }
            unknown = unknown ?? k
            guard let skipped = try? Self.scan(bytes, at: valueAt, { s throws(CBORError) in try s.skip() }) else { return nil }
            pos = skipped.1
        }
        return nil
    }

    /// Reads field `key` with `body`; nil when absent. A value `body` refuses fails with `wrong`.
    private mutating func read<R>(_ key: UInt64, _ name: String, optional: Bool = false, wrong: (_ kind: String) -> String,
                                  _ body: (inout CBOR.Scanner) throws(CBORError) -> R?) throws(RecordError) -> R? {
        guard let at = seek(key) else {
            if optional { return nil }
            throw .malformed("\(kind) lacks field \(key) (\(name))")
        }
        guard let read = try? Self.scan(bytes, at: at, body), let value = read.0 else { throw .malformed(wrong(kind)) }
        pos = read.1
        return value
    }

    /// A required field read with `body`; a value `body` refuses fails with `wrong`.
    package mutating func field<R>(_ key: UInt64, _ name: String, wrong: (_ kind: String) -> String,
                                      _ body: (inout CBOR.Scanner) throws(CBORError) -> R?) throws(RecordError) -> R {
        try read(key, name, wrong: wrong, body)!
    }

    package mutating func digest(_ key: UInt64, _ name: String) throws(RecordError) -> Digest {
        try field(key, name, wrong: { kind in "\(kind) field \(key) (\(name)) is not a 32-byte hash" }) { s throws(CBORError) in Digest(try s.bytes()) }
    }

    /// A 32-byte field read as an id of the kind the caller expects.
    package mutating func id<Kind>(_ key: UInt64, _ name: String) throws(RecordError) -> ID<Kind> {
        ID(try digest(key, name))
    }

    package mutating func publicKey(_ key: UInt64, _ name: String) throws(RecordError) -> PublicKey {
        try field(key, name, wrong: { kind in "\(kind) field \(key) (\(name)) is not a 32-byte key" }) { s throws(CBORError) in
            PublicKey(try s.bytes())
        }
    }

    package mutating func uint(_ key: UInt64, _ name: String, max: UInt64 = .max) throws(RecordError) -> UInt64 {
        try field(key, name, wrong: { kind in "\(kind) field \(key) (\(name)) is not an unsigned integer ≤ \(max)" }) { s throws(CBORError) in
            let v = try s.unsigned()
            return v <= max ? v : nil
        }
    }

    package mutating func text(_ key: UInt64, _ name: String, maxBytes: Int) throws(RecordError) -> String {
        try field(key, name, wrong: { kind in "\(kind) field \(key) (\(name)) is not text of at most \(maxBytes) bytes" }) { s throws(CBORError) in
            let t = try s.text()
            return t.count <= maxBytes ? String(decoding: t, as: UTF8.self) : nil
        }
    }

    /// A byte-string field of `count` bytes (any length when nil); `wrong` names the refusal.
    package mutating func bytes(_ key: UInt64, _ name: String, count: Int? = nil, wrong: @autoclosure () -> String) throws(RecordError) -> [UInt8] {
        try field(key, name, wrong: { _ in wrong() }) { s throws(CBORError) in
            let b = try s.bytes()
            return count == nil || b.count == count ? Array(b) : nil
        }
    }

    /// An optional field read with `body` (nil when absent); a value `body` refuses fails with `wrong`.
    package mutating func optional<R>(_ key: UInt64, wrong: @autoclosure () -> String,
                                      _ body: (inout CBOR.Scanner) throws(CBORError) -> R?) throws(RecordError) -> R? {
        try read(key, "", optional: true, wrong: { _ in wrong() }, body)
    }

    /// A field holding a nested map, read field by field as `kind`.
    package mutating func fields(_ key: UInt64, _ name: String, kind nested: String) throws(RecordError) -> BodyFields {
        guard let at = seek(key) else { throw .malformed("\(kind) lacks field \(key) (\(name))") }
        let inner = try BodyFields(validated: bytes, at: at, kind: nested)
        guard let skipped = try? Self.scan(bytes, at: at, { s throws(CBORError) in try s.skip() }) else { throw .malformed("\(kind) field \(key) is unreadable") }
        pos = skipped.1
        return inner
    }

    /// A field decoded whole, as a CBOR item (for free-form values such as metadata maps).
    package mutating func item(_ key: UInt64, _ name: String) throws(RecordError) -> CBOR {
        try field(key, name, wrong: { kind in "\(kind) field \(key) (\(name)) is unreadable" }) { s throws(CBORError) in
            try CBOR.decode(Array(try s.skip()))
        }
    }

    /// A sorted, duplicate-free list of 32-byte values (keys or ids), or nil for CBOR null (or,
    /// when `optional`, for an absent field).
    package mutating func sortedSet(_ key: UInt64, _ name: String, nullable: Bool = false, optional: Bool = false) throws(RecordError) -> [[UInt8]]? {
        enum Fault { case list, size, order }
        var fault = Fault.list
        let result: [[UInt8]]?? = try read(key, name, optional: optional, wrong: { kind in
            switch fault {
            case .list: "\(kind) field \(key) (\(name)) is not a list"
            case .size: "\(kind) field \(key) (\(name)) holds a non-32-byte value"
            case .order: "\(kind) field \(key) (\(name)) is not sorted and duplicate-free"
            }
        }) { s throws(CBORError) -> [[UInt8]]?? in
            if nullable, s.null() { return .some(nil) }
            let n = try s.arrayCount()
            var out = [[UInt8]]()
            out.reserveCapacity(n)
            for _ in 0..<n {
                fault = .size
                let b = try s.bytes()
                guard b.count == 32 else { return nil }
                fault = .order
                if let last = out.last, !last.lexicographicallyPrecedes(b) { return nil }
                out.append(Array(b))
            }
            return .some(out)
        }
        return result ?? nil
    }

    /// Fails if any field was not read: unknown fields are refused, not ignored.
    package mutating func finish() throws(RecordError) {
        if unknown == nil, remaining > 0, let next = try? Self.scan(bytes, at: pos, { s throws(CBORError) in try s.unsigned() }) { unknown = next.0 }
        if let k = unknown { throw .malformed("\(kind) has unknown field \(k)") }
    }
}

/// Builds a body map; the CBOR encoder sorts the keys canonically.
package struct BodyBuilder {
    private var entries: [CBOR.MapEntry] = []
    package init() {}
    package mutating func set(_ key: UInt64, _ value: CBOR) { entries.append(.init(.unsigned(key), value)) }
    package var item: CBOR { .map(entries) }
    package var encoded: [UInt8] { item.encoded }
}

/// A sorted, duplicate-free CBOR list of byte strings.
package func sortedList<S: Sequence>(_ values: S) -> CBOR where S.Element == [UInt8] {
    let unique = Set(values.map { $0 })
    return .array(unique.sorted { $0.lexicographicallyPrecedes($1) }.map { .bytes($0) })
}
