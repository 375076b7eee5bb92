extension CBOR {
    /// The deterministic encoding: shortest heads, definite lengths, map keys sorted bytewise by
    /// their encodings. These are the only bytes Datanet ever hashes or signs.
    public var encoded: [UInt8] {
        var out = [UInt8]()
        // Sized first: a large value (a sync message of many objects) is written once, not
        // copied each time its buffer regrows.
        out.reserveCapacity(encodedCount)
        encode(into: &out)
        return out
    }

    /// The number of bytes `encode(into:)` appends.
    public var encodedCount: Int {
        switch self {
        case .unsigned(let v), .negative(let v): return CBOR.headCount(v)
        case .bytes(let b): return CBOR.headCount(UInt64(b.count)) + b.count
        case .text(let t): return CBOR.headCount(UInt64(t.count)) + t.count
        case .array(let items): return items.reduce(CBOR.headCount(UInt64(items.count))) { $0 + $1.encodedCount }
        case .map(let entries): return entries.reduce(CBOR.headCount(UInt64(entries.count))) { $0 + $1.key.encodedCount + $1.value.encodedCount }
        case .bool, .null: return 1
        }
    }

    /// The length of a head carrying `value` in its shortest form (`appendHead`).
    static func headCount(_ value: UInt64) -> Int {
        switch value {
        case 0..<24: 1
        case 24...0xff: 2
        case 0x100...0xffff: 3
        case 0x1_0000...0xffff_ffff: 5
        default: 9
        }
    }

    /// Appends the deterministic encoding to `out`.
    public func encode(into out: inout [UInt8]) {
        switch self {
        case .unsigned(let v): CBOR.appendHead(0, v, to: &out)
        case .negative(let v): CBOR.appendHead(1, v, to: &out)
        case .bytes(let b):
            CBOR.appendHead(2, UInt64(b.count), to: &out)
            out.append(contentsOf: b)
        case .text(let t):
            CBOR.appendHead(3, UInt64(t.count), to: &out)
            out.append(contentsOf: t)
        case .array(let items):
            CBOR.appendHead(4, UInt64(items.count), to: &out)
            for item in items { item.encode(into: &out) }
        case .map(let entries):
            CBOR.appendHead(5, UInt64(entries.count), to: &out)
            if entries.allSatisfy({ $0.key.unsignedValue != nil }) {
                // Unsigned keys (every Datanet body): bytewise order of their shortest encodings
                // is numeric order, so sort the numbers and encode in place, no temporaries.
                for e in entries.sorted(by: { $0.key.unsignedValue! < $1.key.unsignedValue! }) {
                    e.key.encode(into: &out)
                    e.value.encode(into: &out)
                }
            } else {
                let encodedEntries = entries.map { ($0.key.encoded, $0.value) }
                    .sorted { $0.0.lexicographicallyPrecedes($1.0) }
                for (k, v) in encodedEntries {
                    out.append(contentsOf: k)
                    v.encode(into: &out)
                }
            }
        case .bool(let b): out.append(b ? 0xf5 : 0xf4)
        case .null: out.append(0xf6)
        }
    }

    /// Appends a major type and argument in its shortest form: the building block for
    /// encoders that write a known shape directly, without a `CBOR` tree.
    public static func appendHead(_ major: UInt8, _ value: UInt64, to out: inout [UInt8]) {
        let m = major << 5
        switch value {
        case 0..<24: out.append(m | UInt8(value))
        case 24...0xff: out.append(contentsOf: [m | 24, UInt8(value)])
        case 0x100...0xffff: out.append(m | 25); appendBE(value, bytes: 2, to: &out)
        case 0x1_0000...0xffff_ffff: out.append(m | 26); appendBE(value, bytes: 4, to: &out)
        default: out.append(m | 27); appendBE(value, bytes: 8, to: &out)
        }
    }

    private static func appendBE(_ v: UInt64, bytes: Int, to out: inout [UInt8]) {
        for i in stride(from: bytes - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}
