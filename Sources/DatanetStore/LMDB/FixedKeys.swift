import DatanetCrypto
import DatanetObjects

/// An unsigned 64-bit number as an 8-byte big-endian key or value (so numeric and key order
/// agree), held inline: hot loops that write millions of entries allocate nothing for it.
public struct BigEndianUInt64: ContiguousKey {
    var stored: UInt64

    /// The key for `n`.
    public init(_ n: UInt64) { stored = n.bigEndian }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: stored, body)
    }
}

/// A 40-byte key, an id followed by a big-endian 64-bit number (an entry of one Datanet's
/// log-ordered index), held inline.
public struct DigestNumberKey: ContiguousKey {
    // A homogeneous tuple is laid out contiguously, so its bytes are the key.
    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)

    /// The key `id ‖ big-endian n`.
    @inlinable
    public init<Kind>(_ id: ID<Kind>, _ n: UInt64) {
        Swift.withUnsafeMutableBytes(of: &words) { out in
            id.withUnsafeBytes { out.copyMemory(from: $0) }
            out.storeBytes(of: n.bigEndian, toByteOffset: 32, as: UInt64.self)
        }
    }

    /// The key `digest ‖ big-endian n`.
    @inlinable
    public init(_ digest: Digest, _ n: UInt64) {
        Swift.withUnsafeMutableBytes(of: &words) { out in
            digest.withUnsafeBytes { out.copyMemory(from: $0) }
            out.storeBytes(of: n.bigEndian, toByteOffset: 32, as: UInt64.self)
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }
}
