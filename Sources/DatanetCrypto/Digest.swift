/// A 32-byte SHA-256 digest: a leaf hash, a Merkle node or root, a sidecar's hash. Ids of
/// Datanets, records and content objects are digests too, typed apart as `ID<Kind>`.
///
/// Stored inline as four words in memory order, so it is `Hashable` and costs no allocation;
/// ordering is bytewise (the order LMDB keys sort in).
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The number of bytes in a digest.
    public static let byteCount = 32
    @usableFromInline var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    /// The all-zero digest (never the hash of anything in practice; used as a placeholder value).
    public static let zero = Digest()

    private init() {}

    /// Copies 32 bytes from a buffer; returns nil if it is not exactly 32 bytes long.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 32 else { return nil }
        w0 = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        w1 = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        w2 = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        w3 = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
    }

    /// Copies 32 bytes from a byte collection; returns nil for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == Digest.byteCount else { return nil }
        self.init()
        withUnsafeMutableBytes(of: &self) { out in
            // Contiguous storage (arrays, slices, Data) is copied in one go: this runs for
            // every id decoded, and the generic element loop was a profile hot spot.
            let copied: Void? = bytes.withContiguousStorageIfAvailable { out.copyMemory(from: UnsafeRawBufferPointer($0)) }
            if copied == nil { for (i, b) in bytes.enumerated() { out[i] = b } }
        }
    }

    /// Parses exactly 64 hex digits.
    public init?(hex: String) {
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// The digest's bytes.
    public var bytes: [UInt8] { Swift.withUnsafeBytes(of: self) { Array($0) } }

    /// Lower-case hex of the 32 bytes.
    public var hex: String { Swift.withUnsafeBytes(of: self) { Hex.encode($0) } }

    public var description: String { hex }

    /// Calls `body` with the digest's 32 bytes.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self, body)
    }

    public static func < (a: Digest, b: Digest) -> Bool {
        let x = (UInt64(bigEndian: a.w0), UInt64(bigEndian: a.w1), UInt64(bigEndian: a.w2), UInt64(bigEndian: a.w3))
        let y = (UInt64(bigEndian: b.w0), UInt64(bigEndian: b.w1), UInt64(bigEndian: b.w2), UInt64(bigEndian: b.w3))
        return x < y
    }
}
