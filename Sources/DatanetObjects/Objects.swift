import DatanetCBOR
import DatanetCrypto

/// The kinds of content object; each lives in its own table (schema/objects.md).
public enum ObjectKind: UInt8, Sendable, CustomStringConvertible {
    /// Raw bytes cut by FastCDC.
    case chunk = 0
    /// A file: a manifest of chunks under a Merkle root.
    case blob = 1
    /// A folder: sorted entries naming blobs and trees.
    case tree = 2

    public var description: String {
        switch self { case .chunk: "chunk"; case .blob: "blob"; case .tree: "tree" }
    }
}

/// One chunk of a blob: the Merkle leaf is `id ‖ u64 offset ‖ u32 length`, all big-endian.
public struct ChunkRef: Hashable, Sendable {
    /// SHA-256 of the chunk's bytes.
    public var id: ObjectID
    /// Where the chunk starts in the file.
    public var offset: UInt64
    /// The chunk's length in bytes.
    public var length: UInt32

    /// A chunk of `length` bytes with id `id` at `offset`.
    public init(id: ObjectID, offset: UInt64, length: UInt32) {
        (self.id, self.offset, self.length) = (id, offset, length)
    }

    /// The 44 bytes hashed as this chunk's Merkle leaf.
    public var leafData: [UInt8] {
        var out = id.bytes
        out.reserveCapacity(44)
        BigEndian.append(offset, 8, &out)
        BigEndian.append(UInt64(length), 4, &out)
        return out
    }

    /// RFC 9162 leaf hash of `leafData`.
    public var leafHash: Digest { Merkle.leafHash(leafData) }
}

/// A file's manifest. Stored as `u64 size ‖ root ‖ leafData…`; its id is
/// SHA-256("datanet/v1/blob" ‖ 0x00 ‖ u64 size ‖ root).
public struct BlobManifest: Hashable, Sendable {
    /// The file's length.
    public var size: UInt64
    /// RFC 9162 root over the chunks' leaves (SHA-256 of nothing for an empty file).
    public var root: Digest
    /// The chunks in file order.
    public var chunks: [ChunkRef]

    /// Builds a manifest from chunks, computing the root.
    public init(chunks: [ChunkRef]) {
        self.chunks = chunks
        size = chunks.reduce(0) { $0 + UInt64($1.length) }
        root = Merkle.root(leafHashes: chunks.map(\.leafHash))
    }

    /// Builds a manifest whose root is already known (computed while ingesting).
    package init(size: UInt64, root: Digest, chunks: [ChunkRef]) {
        self.size = size; self.root = root; self.chunks = chunks
    }

    /// The blob id for a file of `size` bytes with Merkle root `root`.
    public static func id(size: UInt64, root: Digest) -> ObjectID {
        var data = Array("datanet/v1/blob".utf8)
        data.append(0)
        BigEndian.append(size, 8, &data)
        data.append(contentsOf: root.bytes)
        return ObjectID(SHA256.hash(data))
    }

    /// This manifest's id.
    public var id: ObjectID { BlobManifest.id(size: size, root: root) }

    /// The stored bytes.
    public var encoded: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(40 + 44 * chunks.count)
        BigEndian.append(size, 8, &out)
        out.append(contentsOf: root.bytes)
        for c in chunks { out.append(contentsOf: c.leafData) }
        return out
    }

    /// Parses stored bytes; checks only the layout (fsck checks the contents).
    public init(encoded b: UnsafeRawBufferPointer) throws {
        guard b.count >= 40, (b.count - 40) % 44 == 0 else {
            throw StoreError.corrupt("blob manifest of \(b.count) bytes has an invalid length")
        }
        size = BigEndian.read(b, 0, 8)
        root = Digest(UnsafeRawBufferPointer(rebasing: b[8..<40]))!
        var chunks = [ChunkRef]()
        chunks.reserveCapacity((b.count - 40) / 44)
        var p = 40
        while p < b.count {
            chunks.append(ChunkRef(id: ObjectID(UnsafeRawBufferPointer(rebasing: b[p..<p + 32]))!,
                                   offset: BigEndian.read(b, p + 32, 8), length: UInt32(BigEndian.read(b, p + 40, 4))))
            p += 44
        }
        self.chunks = chunks
    }
}

/// One entry of a folder.
public struct TreeEntry: Hashable, Sendable {
    /// The file or folder name as raw bytes (never normalized).
    public var name: [UInt8]
    /// `.blob` or `.tree`.
    public var kind: ObjectKind
    /// The object's id.
    public var id: ObjectID
    /// Bytes of file content under this entry.
    public var size: UInt64

    public init(name: [UInt8], kind: ObjectKind, id: ObjectID, size: UInt64) {
        (self.name, self.kind, self.id, self.size) = (name, kind, id, size)
    }
}

/// A folder: entries sorted by name bytes, stored as deterministic CBOR
/// `[[name: bstr, kind: uint, id: bstr .size 32, size: uint], …]`;
/// id = SHA-256("datanet/v1/tree" ‖ 0x00 ‖ bytes).
public struct Tree: Hashable, Sendable {
    /// Entries in name-byte order.
    public var entries: [TreeEntry]

    /// Sorts the entries by name bytes; refuses invalid or repeated names.
    public init(entries: [TreeEntry]) throws {
        let sorted = entries.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        for (i, e) in sorted.enumerated() {
            guard Tree.isValidName(e.name), e.kind != .chunk else {
                throw StoreError.corrupt("'\(String(decoding: e.name, as: UTF8.self))' cannot be a folder entry")
            }
            if i > 0 && sorted[i - 1].name == e.name {
                throw StoreError.corrupt("folder entry '\(String(decoding: e.name, as: UTF8.self))' is repeated")
            }
        }
        self.entries = sorted
    }

    /// Total content bytes below this folder.
    public var size: UInt64 { entries.reduce(0) { $0 + $1.size } }

    /// The stored bytes.
    public var encoded: [UInt8] {
        CBOR.array(entries.map {
            .array([.bytes($0.name), .unsigned(UInt64($0.kind.rawValue)), .bytes($0.id.bytes), .unsigned($0.size)])
        }).encoded
    }

    /// The id of a tree with these stored bytes.
    public static func id(encoded: [UInt8]) -> ObjectID {
        var data = Array("datanet/v1/tree".utf8)
        data.append(0)
        data.append(contentsOf: encoded)
        return ObjectID(SHA256.hash(data))
    }

    /// Strictly parses stored bytes: canonical CBOR, valid names, sorted unique names.
    public init(encoded: [UInt8]) throws {
        let item: CBOR
        do { item = try CBOR.decode(encoded) } catch { throw StoreError.corrupt("tree: \(error)") }
        guard let list = item.arrayValue else { throw StoreError.corrupt("tree is not a CBOR array") }
        var entries = [TreeEntry]()
        for e in list {
            guard let f = e.arrayValue, f.count == 4, let name = f[0].bytesValue,
                  let k = f[1].unsignedValue, let idBytes = f[2].bytesValue,
                  let id = ObjectID(bytes: idBytes), let size = f[3].unsignedValue,
                  k == 1 || k == 2, let kind = ObjectKind(rawValue: UInt8(k))
            else { throw StoreError.corrupt("tree entry is malformed") }
            guard Tree.isValidName(name) else {
                throw StoreError.corrupt("tree entry name \(Hex.encode(name)) is not a valid file name")
            }
            if let last = entries.last, !last.name.lexicographicallyPrecedes(name) {
                throw StoreError.corrupt("tree entries not sorted or repeated at \(String(decoding: name, as: UTF8.self))")
            }
            entries.append(TreeEntry(name: name, kind: kind, id: id, size: size))
        }
        self.entries = entries
    }

    /// A name is non-empty, not "." or "..", and holds no "/" or NUL byte.
    public static func isValidName(_ name: [UInt8]) -> Bool {
        !name.isEmpty && name != [0x2e] && name != [0x2e, 0x2e] && !name.contains(0x2f) && !name.contains(0)
    }
}
