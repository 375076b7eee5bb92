import DatanetCrypto

/// FastCDC-2020 content-defined chunking ("rolling two bytes each time", normalized chunking
/// level 1), bit-compatible with the reference implementation's cut points (schema/chunking.md;
/// checked against an independent implementation by tools/interop/fastcdc).
public enum FastCDC {
    /// No chunk is shorter, except the last one of a file.
    public static let minSize = 16 * 1024
    /// The target average chunk size.
    public static let avgSize = 64 * 1024
    /// No chunk is longer.
    public static let maxSize = 256 * 1024

    /// Mask used before the average size (reference MASKS[17] = log2(avg) + 1 bits, level 1).
    public static let maskS: UInt64 = 0x0000_d907_0353_7000
    /// Mask used after the average size (reference MASKS[15] = log2(avg) − 1 bits, level 1).
    public static let maskL: UInt64 = 0x0000_d90f_0353_0000

    /// GEAR[i] = the first 8 bytes, big-endian, of MD5 over 64 bytes all equal to i; followed by
    /// the same table shifted left one bit (GEAR_LS), for the even byte of each pair.
    /// Allocated once and never freed: the hot loop indexes it through a raw pointer.
    nonisolated(unsafe) static let tables: UnsafeMutablePointer<UInt64> = {
        let t = UnsafeMutablePointer<UInt64>.allocate(capacity: 512)
        for i in 0..<256 {
            let md5 = LegacyMD5.hash([UInt8](repeating: UInt8(i), count: 64))
            var g: UInt64 = 0
            for b in md5[0..<8] { g = g << 8 | UInt64(b) }
            t[i] = g
            t[256 + i] = g << 1
        }
        return t
    }()

    /// The gear value for byte `i`.
    public static func gear(_ i: UInt8) -> UInt64 { tables[Int(i)] }

    /// The length of the chunk that starts at the beginning of `data`.
    ///
    /// `data` must hold at least `maxSize` bytes, or everything that is left of the input.
    /// Returns `data.count` when that is at most `minSize` (the last chunk of a file).
    @inlinable
    public static func cut(_ data: UnsafeRawBufferPointer) -> Int {
        cutImpl(data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count)
    }

    // Hot loop: raw pointers, no bounds checks, two bytes per step (the 2020 paper's §3.7).
    @usableFromInline
    static func cutImpl(_ p: UnsafePointer<UInt8>?, _ count: Int) -> Int {
        var remaining = count
        guard remaining > minSize, let p else { return remaining }
        var center = avgSize
        if remaining > maxSize {
            remaining = maxSize
        } else if remaining < center {
            center = remaining
        }
        let gear = UnsafePointer(tables)
        let gearLS = gear + 256
        let maskSLS = maskS << 1, maskLLS = maskL << 1
        var index = minSize / 2
        var hash: UInt64 = 0
        while index < center / 2 {
            let a = index * 2
            hash = (hash << 2) &+ gearLS[Int(p[a])]
            if hash & maskSLS == 0 { return a }
            hash = hash &+ gear[Int(p[a + 1])]
            if hash & maskS == 0 { return a + 1 }
            index += 1
        }
        while index < remaining / 2 {
            let a = index * 2
            hash = (hash << 2) &+ gearLS[Int(p[a])]
            if hash & maskLLS == 0 { return a }
            hash = hash &+ gear[Int(p[a + 1])]
            if hash & maskL == 0 { return a + 1 }
            index += 1
        }
        return remaining
    }
}
