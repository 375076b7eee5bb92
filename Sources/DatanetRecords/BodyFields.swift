import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// Strict reading of a record body: a map with small unsigned-integer keys, every field of the
/// right type, and no field the schema does not name.
package struct BodyFields {
    private var fields: [UInt64: CBOR] = [:]
    private let kind: String

    package init(_ body: [UInt8], kind: String) throws(RecordError) {
        let item: CBOR
        do { item = try CBOR.decode(body) } catch { throw .cbor(error) }
        try self.init(item, kind: kind)
    }

    package init(_ item: CBOR, kind: String) throws(RecordError) {
        self.kind = kind
        guard case .map(let entries) = item else { throw .malformed("\(kind) body is not a map") }
        for e in entries {
            guard let k = e.key.unsignedValue else { throw .malformed("\(kind) has a non-integer field key") }
            fields[k] = e.value
        }
    }

    private mutating func take(_ key: UInt64, _ name: String) throws(RecordError) -> CBOR {
        guard let v = fields.removeValue(forKey: key) else { throw .malformed("\(kind) lacks field \(key) (\(name))") }
        return v
    }

    package mutating func digest(_ key: UInt64, _ name: String) throws(RecordError) -> Digest {
        guard let b = try take(key, name).bytesValue, let d = Digest(bytes: b) else {
            throw .malformed("\(kind) field \(key) (\(name)) is not a 32-byte hash")
        }
        return d
    }

    /// A 32-byte field read as an id of the kind the caller expects.
    package mutating func id<Kind>(_ key: UInt64, _ name: String) throws(RecordError) -> ID<Kind> {
        ID(try digest(key, name))
    }

    package mutating func publicKey(_ key: UInt64, _ name: String) throws(RecordError) -> PublicKey {
        try Self.publicKey(try take(key, name), "\(kind) field \(key) (\(name))")
    }

    package static func publicKey(_ v: CBOR, _ what: String) throws(RecordError) -> PublicKey {
        guard let b = v.bytesValue, let k = try? PublicKey(bytes: b) else { throw .malformed("\(what) is not a 32-byte key") }
        return k
    }

    package mutating func uint(_ key: UInt64, _ name: String, max: UInt64 = .max) throws(RecordError) -> UInt64 {
        guard let v = try take(key, name).unsignedValue, v <= max else {
            throw .malformed("\(kind) field \(key) (\(name)) is not an unsigned integer ≤ \(max)")
        }
        return v
    }

    package mutating func text(_ key: UInt64, _ name: String, maxBytes: Int) throws(RecordError) -> String {
        guard case .text(let t) = try take(key, name), t.count <= maxBytes else {
            throw .malformed("\(kind) field \(key) (\(name)) is not text of at most \(maxBytes) bytes")
        }
        return String(decoding: t, as: UTF8.self)
    }

    package mutating func item(_ key: UInt64, _ name: String) throws(RecordError) -> CBOR { try take(key, name) }

    /// A sorted, duplicate-free list of 32-byte values (keys or ids), or nil for CBOR null.
    package mutating func sortedSet(_ key: UInt64, _ name: String, nullable: Bool = false) throws(RecordError) -> [[UInt8]]? {
        let v = try take(key, name)
        if case .null = v, nullable { return nil }
        guard let list = v.arrayValue else { throw .malformed("\(kind) field \(key) (\(name)) is not a list") }
        var out = [[UInt8]]()
        for e in list {
            guard let b = e.bytesValue, b.count == 32 else { throw .malformed("\(kind) field \(key) (\(name)) holds a non-32-byte value") }
            if let last = out.last, !last.lexicographicallyPrecedes(b) {
                throw .malformed("\(kind) field \(key) (\(name)) is not sorted and duplicate-free")
            }
            out.append(b)
        }
        return out
    }

    /// Fails if any field was not read: unknown fields are refused, not ignored.
    package func finish() throws(RecordError) {
        if let k = fields.keys.min() { throw .malformed("\(kind) has unknown field \(k)") }
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
