/// A digest used as the id of one kind of thing (a Datanet, a record, a content object).
///
/// `Kind` is an uninhabited tag: it exists only so that the compiler refuses a record id where
/// a Datanet id is expected. The value is the `Digest` alone (same size, bytes and ordering),
/// and every member is inlinable, so the wrapper costs nothing on the hot paths that hash,
/// sort and key tables by ids. Turning one kind of id into another is always spelled out
/// (`ID<Other>(id.digest)`), at the few places where one thing is defined to be another.
public struct ID<Kind>: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The digest this id is.
    public let digest: Digest

    /// Names `digest` as an id of this kind.
    @inlinable
    public init(_ digest: Digest) { self.digest = digest }

    /// Copies 32 bytes from a buffer; returns nil if it is not exactly 32 bytes long.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard let d = Digest(bytes) else { return nil }
        digest = d
    }

    /// Copies 32 bytes from a byte collection; returns nil for any other length.
    @inlinable
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard let d = Digest(bytes: bytes) else { return nil }
        digest = d
    }

    /// Parses exactly 64 hex digits.
    @inlinable
    public init?(hex: String) {
        guard let d = Digest(hex: hex) else { return nil }
        digest = d
    }

    /// The id's 32 bytes.
    @inlinable
    public var bytes: [UInt8] { digest.bytes }

    /// Lower-case hex of the 32 bytes.
    @inlinable
    public var hex: String { digest.hex }

    @inlinable
    public var description: String { digest.hex }

    /// Calls `body` with the id's 32 bytes.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try digest.withUnsafeBytes(body)
    }

    // Written out (not synthesized) so that other modules inline them: ids are compared and
    // hashed in every index and sort.
    @inlinable
    public static func == (a: ID, b: ID) -> Bool { a.digest == b.digest }

    @inlinable
    public func hash(into hasher: inout Hasher) { digest.hash(into: &hasher) }

    /// Bytewise, as `Digest` (the order LMDB keys sort in).
    @inlinable
    public static func < (a: ID, b: ID) -> Bool { a.digest < b.digest }
}
