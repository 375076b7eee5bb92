import DatanetCrypto

/// Content ids of files and folders on disk, computed exactly as `add` computes them but
/// without storing anything: what `verify --manifest` checks an exported dataset with.
public enum ContentID {
    /// The blob id of a file or the tree id of a folder (special files are
    /// refused as `add` refuses them; symbolic links are followed, as `add` follows them).
    public static func of(path: String) throws -> (kind: ObjectKind, id: Digest, size: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ChunkReader.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        return try of(try SourceNode.plan(path), buffer)
    }

    private static func of(_ node: SourceNode, _ buffer: UnsafeMutableRawBufferPointer) throws -> (kind: ObjectKind, id: Digest, size: UInt64) {
        switch node {
        case .file(let path, _):
            let reader = try ChunkReader(path: path, buffer: buffer)
            var refs = [ChunkRef]()
            while let (offset, bytes) = try reader.next() {
                refs.append(ChunkRef(id: SHA256.hash(bytes), offset: offset, length: UInt32(bytes.count)))
            }
            let m = BlobManifest(chunks: refs)
            return (.blob, m.id, m.size)
        case .folder(_, let children):
            var entries = [TreeEntry]()
            for (name, child) in children {
                let c = try of(child, buffer)
                entries.append(TreeEntry(name: name, kind: c.kind, id: c.id, size: c.size))
            }
            let tree = try Tree(entries: entries)
            return (.tree, Tree.id(encoded: tree.encoded), tree.size)
        }
    }
}
