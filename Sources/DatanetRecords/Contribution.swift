import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// The kind of content a contribution names.
public enum ContentKind: UInt64, Sendable {
    case blob = 1, tree = 2

    /// The kind of object the content's root is in the store.
    public var object: ObjectKind { self == .tree ? .tree : .blob }
}

/// `contribution`: one file or folder offered to a Datanet. Signed by its author.
public struct Contribution: Hashable, Sendable {
    /// Longest media type and license, in UTF-8 bytes.
    public static let maximumMediaType = 255, maximumLicense = 256
    public var datanet: DatanetID
    public var author: PublicKey
    public var content: ObjectID
    public var contentKind: ContentKind
    public var size: UInt64
    public var mediaType: String
    /// SPDX license expression.
    public var license: String
    /// SHA-256 of the salted sidecar (label, file name, free metadata), which can be erased later.
    public var sidecar: Digest
    /// Advisory creation time, Unix milliseconds.
    public var createdAt: UInt64

    public init(datanet: DatanetID, author: PublicKey, content: ObjectID, contentKind: ContentKind, size: UInt64,
                mediaType: String, license: String, sidecar: Digest, createdAt: UInt64) {
        self.datanet = datanet; self.author = author; self.content = content; self.contentKind = contentKind
        self.size = size; self.mediaType = mediaType; self.license = license
        self.sidecar = sidecar; self.createdAt = createdAt
    }

    public var body: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .bytes(author.bytes))
        b.set(2, .bytes(content.bytes))
        b.set(3, .unsigned(contentKind.rawValue))
        b.set(4, .unsigned(size))
        b.set(5, .string(mediaType))
        b.set(6, .string(license))
        b.set(7, .bytes(sidecar.bytes))
        b.set(8, .unsigned(createdAt))
        return b.encoded
    }

    public init(body: [UInt8]) throws(RecordError) {
        var f = try BodyFields(body, kind: "contribution")
        datanet = try f.id(0, "datanet")
        author = try f.publicKey(1, "author")
        content = try f.id(2, "content")
        guard let k = ContentKind(rawValue: try f.uint(3, "content kind")) else { throw .malformed("content kind is not 1 (blob) or 2 (tree)") }
        contentKind = k
        size = try f.uint(4, "size")
        mediaType = try f.text(5, "media type", maxBytes: Self.maximumMediaType)
        license = try f.text(6, "license", maxBytes: Self.maximumLicense)
        sidecar = try f.digest(7, "sidecar")
        createdAt = try f.uint(8, "created-at")
        try f.finish()
    }

    /// Reads a body laid out as this build writes it (fields 0–8, in order, nothing else)
    /// straight from the buffer, without the canonical-form check of `init(body:)`; nil for
    /// any other layout. For listings of records this store already checked when storing them.
    package static func scanned(_ body: UnsafeRawBufferPointer) -> Contribution? {
        var s = CBOR.Scanner(body)
        func key(_ k: UInt64) -> Bool { (try? s.unsigned()) == k }
        func id() -> Digest? { (try? s.bytes()).flatMap { Digest($0) } }
        func text(_ max: Int) -> String? {
            guard let t = try? s.text(), t.count <= max else { return nil }
            return String(decoding: t, as: UTF8.self)
        }
        guard (try? s.mapCount()) == 9,
              key(0), let datanet = id(), key(1), let author = (try? s.bytes()).flatMap(PublicKey.init), key(2), let content = id(),
              key(3), let kind = (try? s.unsigned()).flatMap(ContentKind.init(rawValue:)), key(4), let size = try? s.unsigned(),
              key(5), let mediaType = text(maximumMediaType), key(6), let license = text(maximumLicense),
              key(7), let sidecar = id(), key(8), let createdAt = try? s.unsigned(), s.isAtEnd
        else { return nil }
        return Contribution(datanet: DatanetID(datanet), author: author, content: ObjectID(content), contentKind: kind, size: size,
                            mediaType: mediaType, license: license, sidecar: sidecar, createdAt: createdAt)
    }
}
