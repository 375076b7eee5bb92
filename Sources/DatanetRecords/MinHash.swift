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
        let (bytes, spans) = wordSpans(text)
        return spans.map { Array(bytes[$0]) }
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
    /// Hot path (every text proposal and import): words are kept as spans of one lower-cased
    /// byte buffer, shingles are hashed through one reused hasher, duplicates are dropped by
    /// their hash (the minimum over a multiset is the minimum over its set), and
    /// (aᵢ·x + bᵢ) mod (2⁶¹ − 1) is reduced by folding, not by division, over raw buffers.
    public static func signature(_ text: String) -> [UInt64]? {
        let (bytes, spans) = wordSpans(text)
        guard !spans.isEmpty else { return nil }
        let width = min(5, spans.count)
        var hasher = SHA256.Hasher()
        var xs = [UInt64]()
        xs.reserveCapacity(spans.count - width + 1)
        // Each shingle is laid out after the prefix in one buffer and hashed in one update:
        // libcrypto's per-call overhead, not the compression, dominates messages this short.
        var shingle = shinglePrefix
        shingle.reserveCapacity(shinglePrefix.count + 256)
        bytes.withUnsafeBytes { all in
            for start in 0...(spans.count - width) {
                shingle.removeSubrange(shinglePrefix.count...)
                for j in start..<start + width {
                    if j > start { shingle.append(0x20) }
                    shingle.append(contentsOf: UnsafeRawBufferPointer(rebasing: all[spans[j]]))
                }
                shingle.withUnsafeBytes { hasher.update($0) }
                // The first 8 bytes of the digest, big-endian.
                let first = hasher.finalize().withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                xs.append(UInt64(bigEndian: first) % prime)
            }
        }
        xs.sort()
        // Duplicates dropped in place (the minimum over a multiset is the minimum over its set).
        var unique = 0
        for x in xs where unique == 0 || xs[unique - 1] != x {
            xs[unique] = x
            unique += 1
        }
        var sig = [UInt64](repeating: .max, count: k)
        sig.withUnsafeMutableBufferPointer { s in
            paramA.withUnsafeBufferPointer { a in
                paramB.withUnsafeBufferPointer { b in
                    // Two hashes per pass over the slots: each slot's parameters and minimum are
                    // loaded once for both, and the two products overlap in the pipeline.
                    var j = 0
                    while j + 1 < unique {
                        let x = xs[j], y = xs[j + 1]
                        for i in 0..<k {
                            let u = mulAddMod(a[i], x, b[i]), v = mulAddMod(a[i], y, b[i])
                            s[i] = Swift.min(s[i], Swift.min(u, v))
                        }
                        j += 2
                    }
                    if j < unique {
                        let x = xs[j]
                        for i in 0..<k { s[i] = Swift.min(s[i], mulAddMod(a[i], x, b[i])) }
                    }
                }
            }
        }
        return sig
    }

    private static let shinglePrefix = Array("datanet/v1/minhash".utf8) + [0]
    private static let paramA = params.map(\.0)
    private static let paramB = params.map(\.1)

    /// The words of `text` as spans of one buffer of their lower-cased UTF-8 bytes (ASCII text
    /// is split in place; anything else through `tokensByCharacter`).
    static func wordSpans(_ text: String) -> ([UInt8], [Range<Int>]) {
        var spans = [Range<Int>]()
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else {
            var bytes = [UInt8]()
            for w in tokensByCharacter(text) {
                spans.append(bytes.count..<bytes.count + w.count)
                bytes += w
            }
            return (bytes, spans)
        }
        var bytes = Array(text.utf8)
        var start = -1
        for i in bytes.indices {
            var b = bytes[i]
            if b >= 0x41 && b <= 0x5a { b += 0x20; bytes[i] = b }
            if (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) {
                if start < 0 { start = i }
            } else if start >= 0 {
                spans.append(start..<i)
                start = -1
            }
        }
        if start >= 0 { spans.append(start..<bytes.count) }
        return (bytes, spans)
    }

    /// (a·x + b) mod (2⁶¹ − 1) for a, x, b < 2⁶¹ − 1: 2⁶¹ ≡ 1, so the 122-bit product folds into
    /// its low 61 bits plus the rest, and one conditional subtraction after each addition suffices.
    @inline(__always)
    package static func mulAddMod(_ a: UInt64, _ x: UInt64, _ b: UInt64) -> UInt64 {
        // Every operand is below 2⁶¹, so no sum below can overflow 64 bits: wrapping arithmetic
        // only drops the overflow checks. (The two high parts do not overlap, so + is |.)
        let (hi, lo) = a.multipliedFullWidth(by: x)
        var r = (lo & prime) &+ (lo >> 61) &+ (hi << 3)
        if r >= prime { r &-= prime }
        r &+= b
        if r >= prime { r &-= prime }
        return r
    }

    /// Slots in which two signatures agree.
    public static func matches(_ a: [UInt64], _ b: [UInt64]) -> Int { zip(a, b).filter { $0 == $1 }.count }
}
