/// SplitMix64 (Steele, Lea and Flood 2014): deterministic, seeded data for tests, fast enough
/// to fill 128 MiB inputs.
public struct SplitMix64 {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// `n` random bytes.
    public mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { b in
            var i = 0
            while i + 8 <= n { b.storeBytes(of: next(), toByteOffset: i, as: UInt64.self); i += 8 }
            if i < n { var last = next(); withUnsafeBytes(of: &last) { for j in 0..<(n - i) { b[i + j] = $0[j] } } }
        }
        return out
    }

    /// Applies 1 to `maxEdits` random edits: flip a bit, insert, delete, repeat a run, overwrite.
    public mutating func mutate(_ b: inout [UInt8], maxEdits: UInt64 = 4) {
        for _ in 0...(next() % maxEdits) {
            let pos = Int(next() % UInt64(b.count + 1))
            switch next() % 5 {
            case 0 where pos < b.count: b[pos] ^= UInt8(truncatingIfNeeded: 1 << (next() % 8))
            case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: pos)
            case 2 where pos < b.count: b.remove(at: pos)
            case 3: b.insert(contentsOf: b[pos...].prefix(Int(next() % 8)), at: pos)
            default: if pos < b.count { b[pos] = UInt8(truncatingIfNeeded: next()) }
            }
        }
    }
}
