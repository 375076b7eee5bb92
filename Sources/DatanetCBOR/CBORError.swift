/// Why a byte string is not a canonical CBOR item. Equality compares only `code`, so tests
/// assert on the rule that fired, not on the offset.
public struct CBORError: Error, Equatable, CustomStringConvertible {
    /// The canonical-encoding rule or structural check that failed.
    public enum Code: String, Sendable {
        case truncated = "input ends inside an item"
        case trailingBytes = "bytes follow the item"
        case nonMinimalInteger = "integer or length not in its shortest form"
        case negativeOutOfRange = "negative integer below -2^63 (Datanet integers are 64-bit)"
        case indefiniteLength = "indefinite length is not allowed"
        case unsortedMapKeys = "map keys not in bytewise order of their encodings"
        case duplicateMapKey = "duplicate map key"
        case floatNotAllowed = "floating-point values are not allowed"
        case tagNotAllowed = "tags are not allowed"
        case simpleValueNotAllowed = "simple value other than false, true, null"
        case reservedAdditionalInfo = "reserved additional-information value (28-30)"
        case tooDeep = "nesting deeper than the limit"
        case lengthTooLarge = "length exceeds the remaining input"
        case invalidUTF8 = "text string is not valid UTF-8"
        case unexpectedType = "item is not of the type the format requires"
    }
    /// The rule that failed.
    public let code: Code
    /// Byte offset where it was detected.
    public let offset: Int

    public init(_ code: Code, at offset: Int) { self.code = code; self.offset = offset }

    public var description: String { "invalid CBOR at byte \(offset): \(code.rawValue)" }

    public static func == (a: CBORError, b: CBORError) -> Bool { a.code == b.code }
}
