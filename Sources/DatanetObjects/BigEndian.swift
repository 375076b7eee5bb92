import DatanetCrypto

/// Big-endian fixed-width numbers, the byte order of every key and length on disk and on the
/// wire (numeric and byte order agree, so LMDB keeps numbered entries in order).
public enum BigEndian {
    /// The 8 bytes of `n`, most significant first.
    public static func bytes(_ n: UInt64) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(8)
        append(n, 8, &out)
        return out
    }

    /// `id ‖ bytes(n)`: an entry of one Datanet's number-ordered index.
    @inlinable
    public static func key<Kind>(_ id: ID<Kind>, _ n: UInt64) -> [UInt8] {
        var k = id.bytes
        k.reserveCapacity(40)
        append(n, 8, &k)
        return k
    }

    /// The number stored in the 8 bytes at `at`; the caller has checked that they exist.
    public static func u64(_ b: UnsafeRawBufferPointer, at: Int = 0) -> UInt64 { read(b, at, 8) }

    /// The number stored in the 8 bytes at `at`; the caller has checked that they exist.
    public static func u64<C: RandomAccessCollection>(_ b: C, at: Int = 0) -> UInt64 where C.Element == UInt8, C.Index == Int {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(b[b.startIndex + at + i]) }
        return v
    }

    /// Appends the low `width` bytes of `v`, most significant first.
    @inline(__always)
    public static func append(_ v: UInt64, _ width: Int, _ out: inout [UInt8]) {
        for i in stride(from: width - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    /// The `width`-byte number at `at`; the caller has checked that the bytes exist.
    @inline(__always)
    public static func read(_ b: UnsafeRawBufferPointer, _ at: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<width { v = v << 8 | UInt64(b[at + i]) }
        return v
    }
}
