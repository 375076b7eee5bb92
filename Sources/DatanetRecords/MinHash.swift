import DatanetCrypto
import DatanetObjects
import Foundation

/// MinHash signatures for near-duplicate text (schema/curation.md "Near-duplicates"):
/// Unicode word tokens (letters and digits), lower-cased; 5-word shingles joined by one
/// space; each shingle hashed to x = first 8 bytes (big-endian) of
/// SHA-256("datanet/v1/minhash" ‖ 0x00 ‖ shingle); k = 128 slots, slot i keeping the minimum of
/// (aᵢ·x + bᵢ) mod (2⁶¹ − 1), with aᵢ, bᵢ the first two 8-byte words of
/// SHA-256("datanet/v1/minhash-params" ‖ u32 i) reduced mod 2⁶¹ − 1 (aᵢ forced non-zero).
/// Two texts are near-duplicates when at least ⌈0.9·k⌉ = 116 slots agree.
public enum MinHash {
    public static let k = 128
    public static let threshold = 116
    /// Larger files are not compared.
    public static let maximumText: UInt64 = 16 << 20
    package static let prime: UInt64 = (1 << 61) - 1
    package static let params: [(UInt64, UInt64)] = (0..<k).map { i in
        var msg = Array("datanet/v1/minhash-params".utf8)
        msg += [UInt8(truncatingIfNeeded: i >> 24), UInt8(truncatingIfNeeded: i >> 16), UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i)]
        let h = SHA256.hash(msg).bytes
        let a = word(h, 0) % prime, b = word(h, 8) % prime
        return (a == 0 ? 1 : a, b)
    }

    package static func word(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }

    /// Lower-cased words: maximal runs of Unicode letters and digits.
    public static func words(_ text: String) -> [String] { tokens(text).map { String(decoding: $0, as: UTF8.self) } }

    /// The words as UTF-8 bytes. ASCII text takes a byte loop that gives what the Character
    /// loop gives (an ASCII Character is a letter or digit exactly when it is [A-Za-z0-9], and
    /// lower-cases to its byte + 0x20); anything else goes through Characters.
    package static func tokens(_ text: String) -> [[UInt8]] {
        var out = [[UInt8]](), current = [UInt8]()
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            for var b in text.utf8 {
                if b >= 0x41 && b <= 0x5a { b += 0x20 }
                if (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) {
                    current.append(b)
                } else if !current.isEmpty {
                    out.append(current)
                    current.removeAll(keepingCapacity: true)
                }
            }
        } else {
            return tokensByCharacter(text)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The rule itself, for any text: Characters of the lower-cased text, letters and digits kept.
    package static func tokensByCharacter(_ text: String) -> [[UInt8]] {
        var out = [[UInt8]](), current = [UInt8]()
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber {
                current += ch.utf8
            } else if !current.isEmpty {
                out.append(current)
                current.removeAll(keepingCapacity: true)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The signature of a text; nil when it has no words.
    ///
    /// Hot path (every text proposal and import): shingles are hashed from one reused byte
    /// buffer, duplicates are dropped by their hash (the minimum over a multiset is the minimum
    /// over its set), and (aᵢ·x + bᵢ) mod (2⁶¹ − 1) is reduced by folding, not by division.
    public static func signature(_ text: String) -> [UInt64]? {
        let w = tokens(text)
        guard !w.isEmpty else { return nil }
        let width = min(5, w.count)
        let prefix = Array("datanet/v1/minhash".utf8) + [0]
        var buffer = prefix
        var xs = [UInt64]()
        xs.reserveCapacity(w.count - width + 1)
        for start in 0...(w.count - width) {
            buffer.removeSubrange(prefix.count...)
            for j in start..<start + width {
                if j > start { buffer.append(0x20) }
                buffer += w[j]
            }
            let h = buffer.withUnsafeBytes { SHA256.hash($0) }.bytes
            xs.append(word(h, 0) % prime)
        }
        xs.sort()
        var sig = [UInt64](repeating: .max, count: k)
        var previous: UInt64?
        for x in xs where x != previous {
            previous = x
            for i in 0..<k {
                let v = mulAddMod(params[i].0, x, params[i].1)
                if v < sig[i] { sig[i] = v }
            }
        }
        return sig
    }

    /// (a·x + b) mod (2⁶¹ − 1) for a, x, b < 2⁶¹ − 1: 2⁶¹ ≡ 1, so the 122-bit product folds into
    /// its low 61 bits plus the rest, and one conditional subtraction after each addition suffices.
    @inline(__always)
    package static func mulAddMod(_ a: UInt64, _ x: UInt64, _ b: UInt64) -> UInt64 {
        let (hi, lo) = a.multipliedFullWidth(by: x)
        var r = (lo & prime) + ((lo >> 61) | (hi << 3))
        if r >= prime { r -= prime }
        r += b
        if r >= prime { r -= prime }
        return r
    }

    /// Slots in which two signatures agree.
    public static func matches(_ a: [UInt64], _ b: [UInt64]) -> Int { zip(a, b).filter { $0 == $1 }.count }
}
