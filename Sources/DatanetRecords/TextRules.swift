import DatanetObjects
/// Which characters the single-line text fields of records may hold (names, labels, licenses,
/// media types, metadata, reasons; schema/records.md "Text fields"). Control characters would
/// reach terminals raw (an ESC sequence can rewrite what a curator sees) and break line- and
/// table-based files, and bidirectional overrides can make text read as something else.
public enum TextRules {
    /// C0 controls (newline and tab included), DEL, C1 controls, and the bidirectional
    /// embedding, override and isolate characters (U+202A–U+202E, U+2066–U+2069).
    public static func isControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x1f, 0x7f...0x9f, 0x202a...0x202e, 0x2066...0x2069: true
        default: false
        }
    }

    /// Refuses `text` for `field` when it holds a control character, naming the first one.
    public static func checkSingleLine(_ text: String, field: String) throws(LedgerRefusal) {
        if let c = text.unicodeScalars.first(where: isControl) {
            throw .controlCharacter(field: field, scalar: c.value)
        }
    }
}

extension String {
    /// Left-pads with zeros to `width` characters.
    package func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
