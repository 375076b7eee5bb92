/// An id with a timestamp, ordered by timestamp then by the id's bytes: an item of a set that
/// peers reconcile (Negentropy), kept in memory or in LMDB with running sums of its ids.
public struct TimestampedID: Hashable, Comparable, Sendable {
    public var timestamp: UInt64
    public var id: Digest

    public init(timestamp: UInt64, id: Digest) { (self.timestamp, self.id) = (timestamp, id) }

    public static func < (a: Self, b: Self) -> Bool { (a.timestamp, a.id) < (b.timestamp, b.id) }
}

/// A sum of digests modulo 2^256, each read as a little-endian 256-bit integer: what a range
/// of a reconciled set adds up to (its fingerprint is taken from it). Sums of adjacent ranges
/// add, so trees keep them per subtree.
public struct DigestSum: Equatable, Sendable {
    public private(set) var limbs: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public static func == (a: Self, b: Self) -> Bool { a.limbs == b.limbs }

    /// Zero: the sum of no digests.
    public init() {}

    /// The sum of one digest.
    public init(_ d: Digest) {
        limbs = d.withUnsafeBytes { Self.limbs(of: $0) }
    }

    /// A sum from its 32 little-endian bytes (`bytes`).
    public init?(bytes b: UnsafeRawBufferPointer) {
        guard b.count == 32 else { return nil }
        limbs = Self.limbs(of: b)
    }

    private static func limbs(of b: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64) {
        (UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
         UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
         UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
         UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    /// The sum as 32 little-endian bytes.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        append(to: &out)
        return out
    }

    /// Appends the sum's 32 little-endian bytes to `out` (no array of its own).
    public func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: limbs) { raw in
            for i in 0..<4 { withUnsafeBytes(of: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian) { out.append(contentsOf: $0) } }
        }
    }

    public static func + (a: Self, b: Self) -> Self {
        var carry: UInt64 = 0
        func add(_ x: UInt64, _ y: UInt64) -> UInt64 {
            let (s1, o1) = x.addingReportingOverflow(y)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            carry = (o1 ? 1 : 0) + (o2 ? 1 : 0)
            return s2
        }
        var r = DigestSum()
        r.limbs = (add(a.limbs.0, b.limbs.0), add(a.limbs.1, b.limbs.1), add(a.limbs.2, b.limbs.2), add(a.limbs.3, b.limbs.3))
        return r
    }

    public static func - (a: Self, b: Self) -> Self {
        var borrow: UInt64 = 0
        func sub(_ x: UInt64, _ y: UInt64) -> UInt64 {
            let (d1, o1) = x.subtractingReportingOverflow(y)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            borrow = (o1 ? 1 : 0) + (o2 ? 1 : 0)
            return d2
        }
        var r = DigestSum()
        r.limbs = (sub(a.limbs.0, b.limbs.0), sub(a.limbs.1, b.limbs.1), sub(a.limbs.2, b.limbs.2), sub(a.limbs.3, b.limbs.3))
        return r
    }
}
