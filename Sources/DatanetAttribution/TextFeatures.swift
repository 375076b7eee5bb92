/// Text as the kNN trainer sees it (schema/training.md "Text features"): tokens are maximal
/// runs of Unicode letters (general category L) or decimal digits (Nd), each scalar mapped by
/// simple case folding; each token is hashed (FNV-1a, 64-bit, over its UTF-8 bytes) into one of
/// 2^18 buckets (the hash's low 18 bits); a document is its buckets' token counts.
public enum TextFeatures {
    public static let bucketBits = 18
    public static var bucketCount: Int { 1 << bucketBits }

    /// The text's tokens, folded, in order.
    public static func tokens(_ text: String) -> [String] {
        var out = [String](), current = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if isWordScalar(s) {
                current.append(fold(s))
            } else if !current.isEmpty {
                out.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }

    /// The bucket of a token: the low 18 bits of FNV-1a 64 over its UTF-8 bytes.
    public static func bucket(_ token: String) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in token.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return UInt32(truncatingIfNeeded: h) & UInt32(bucketCount - 1)
    }

    /// The text's bucket counts, ascending by bucket.
    public static func counts(_ text: String) -> [BucketCount] {
        var tally = [UInt32: Int]()
        for t in tokens(text) { tally[bucket(t), default: 0] += 1 }
        // (A count past 2^32 − 1 — a text of more than 4 GiB of one token — saturates.)
        return tally.sorted { $0.key < $1.key }.map { BucketCount(bucket: $0.key, count: UInt32(clamping: $0.value)) }
    }

    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber: true
        default: false
        }
    }

    /// Simple case folding (Unicode CaseFolding.txt, statuses C and S): the scalar's lowercase
    /// mapping when that is one scalar, but for the scalars whose simple folding differs from
    /// their lowercase (listed in `foldingExceptions`); a scalar whose lowercase is several
    /// scalars (İ) folds to itself, as the simple folding has no entry for it.
    static func fold(_ s: Unicode.Scalar) -> Unicode.Scalar {
        if let f = foldingExceptions[s.value] { return Unicode.Scalar(f)! }
        if (0xAB70...0xABBF).contains(s.value) { return Unicode.Scalar(s.value - 0xAB70 + 0x13A0)! } // Cherokee small → capital
        if (0x13F8...0x13FD).contains(s.value) { return Unicode.Scalar(s.value - 8)! }
        if (0x13A0...0x13F5).contains(s.value) { return s } // Cherokee capitals fold to themselves (their lowercase is the small letters)
        let lower = s.properties.lowercaseMapping.unicodeScalars
        return lower.count == 1 ? lower.first! : s
    }

    /// Scalars whose simple case folding is not their lowercase mapping (CaseFolding.txt,
    /// Unicode 15: the Greek and Latin variant letters, the micro sign, the ypogegrammeni, the
    /// Cyrillic variant letters; the Cherokee ranges are in `fold`).
    static let foldingExceptions: [UInt32: UInt32] = [
        0x00B5: 0x03BC, 0x017F: 0x0073, 0x0345: 0x03B9, 0x03C2: 0x03C3, 0x03D0: 0x03B2, 0x03D1: 0x03B8,
        0x03D5: 0x03C6, 0x03D6: 0x03C0, 0x03F0: 0x03BA, 0x03F1: 0x03C1, 0x03F5: 0x03B5, 0x1E9B: 0x1E61,
        0x1FBE: 0x03B9, 0x1C80: 0x0432, 0x1C81: 0x0434, 0x1C82: 0x043E, 0x1C83: 0x0441, 0x1C84: 0x0442,
        0x1C85: 0x0442, 0x1C86: 0x044A, 0x1C87: 0x0463, 0x1C88: 0xA64B,
    ]
}

/// A bucket and how many of a document's tokens fell in it.
public struct BucketCount: Hashable, Sendable {
    public var bucket: UInt32, count: UInt32
    public init(bucket: UInt32, count: UInt32) { (self.bucket, self.count) = (bucket, count) }
}
