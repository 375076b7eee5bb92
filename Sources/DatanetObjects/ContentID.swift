import DatanetCrypto

/// Content ids of files and folders on disk, computed exactly as `add` computes them but
/// without storing anything: what `verify --manifest` checks an exported dataset with.
public enum ContentID {
    /// The blob id of a file or the tree id of a folder (special files are
    /// refused as `add` refuses them; symbolic links are followed, as `add` follows them).
    /// With `exportedNames`, folder entries are named in their exported form (`ExportedName`,
    /// as `export` writes them) and decoded back to the bytes the tree holds; a name that is
    /// not such a form is refused.
    public static func of(path: String, exportedNames: Bool = false) throws -> (kind: ObjectKind, id: ObjectID, size: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ChunkReader.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        return try of(try SourceNode.plan(path), buffer, exportedNames: exportedNames)
    }

    private static func of(_ node: SourceNode, _ buffer: UnsafeMutableRawBufferPointer, exportedNames: Bool) throws -> (kind: ObjectKind, id: ObjectID, size: UInt64) {
        switch node {
        case .file(let path, _):
            let reader = try ChunkReader(path: path, buffer: buffer)
            var refs = [ChunkRef]()
            while let (offset, bytes) = try reader.next() {
                refs.append(ChunkRef(id: ObjectID(SHA256.hash(bytes)), offset: offset, length: UInt32(bytes.count)))
            }
            let m = BlobManifest(chunks: refs)
            return (.blob, m.id, m.size)
        case .folder(let path, let children):
            var entries = [TreeEntry]()
            for (written, child) in children {
                guard let name = exportedNames ? ExportedName.decode(written) : written else {
                    throw StoreError.badName(path: display(path + [0x2f] + written), why: "not a name `datanet export` writes (a stray % or a needless %XX escape)")
                }
                let c = try of(child, buffer, exportedNames: exportedNames)
                entries.append(TreeEntry(name: name, kind: c.kind, id: c.id, size: c.size))
            }
            let tree = try Tree(entries: entries)
            return (.tree, Tree.id(encoded: tree.encoded), tree.size)
        }
    }
}
