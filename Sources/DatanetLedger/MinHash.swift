import DatanetCrypto
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
    static let prime: UInt64 = (1 << 61) - 1
    /// Media types whose contents are compared.
    public static let textTypes: Set<String> = ["application/json", "application/xml", "application/x-ndjson", "application/yaml"]

    /// True for text/* and the types above (parameters after ';' ignored).
    public static func isText(_ mediaType: String) -> Bool {
        let base = mediaType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return base.hasPrefix("text/") || textTypes.contains(base)
    }

    static let params: [(UInt64, UInt64)] = (0..<k).map { i in
        var msg = Array("datanet/v1/minhash-params".utf8)
        msg += [UInt8(truncatingIfNeeded: i >> 24), UInt8(truncatingIfNeeded: i >> 16), UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i)]
        let h = SHA256.hash(msg).bytes
        let a = word(h, 0) % prime, b = word(h, 8) % prime
        return (a == 0 ? 1 : a, b)
    }

    static func word(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }

    /// Lower-cased words: maximal runs of Unicode letters and digits.
    public static func words(_ text: String) -> [String] {
        var out = [String](), current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) } else if !current.isEmpty { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The signature of a text; nil when it has no words.
    public static func signature(_ text: String) -> [UInt64]? {
        let w = words(text)
        guard !w.isEmpty else { return nil }
        let shingles = w.count < 5 ? [w.joined(separator: " ")] : (0...(w.count - 5)).map { w[$0..<$0 + 5].joined(separator: " ") }
        var sig = [UInt64](repeating: .max, count: k)
        var hasher = SHA256.Hasher()
        for s in Set(shingles) {
            hasher.update(Array("datanet/v1/minhash".utf8) + [0] + Array(s.utf8))
            let x = word(hasher.finalize().bytes, 0) % prime
            for i in 0..<k {
                let (a, b) = params[i]
                let (hi, lo) = a.multipliedFullWidth(by: x)
                let v = (prime.dividingFullWidth((hi, lo)).remainder + b) % prime
                if v < sig[i] { sig[i] = v }
            }
        }
        return sig
    }

    /// Slots in which two signatures agree.
    public static func matches(_ a: [UInt64], _ b: [UInt64]) -> Int { zip(a, b).filter { $0 == $1 }.count }
}
