import DatanetCrypto
import Foundation

/// A portable proof that a chunk sits at a given place in a file (schema/objects.md):
/// the leaf `id ‖ offset ‖ length` is included under the blob's Merkle root, and the blob id
/// commits to (size, root).
public struct ChunkProof: Codable, Equatable, Sendable {
    /// Always "datanet/chunk-proof/v1".
    public var type: String
    /// Blob id (hex).
    public var blob: String
    /// File size in bytes.
    public var size: UInt64
    /// Merkle root (hex).
    public var root: String
    /// Number of chunks (the tree size).
    public var chunks: UInt64
    /// The chunk's index in the file.
    public var index: UInt64
    /// The chunk's id (hex).
    public var chunk: String
    /// Where the chunk starts.
    public var offset: UInt64
    /// The chunk's length.
    public var length: UInt32
    /// Sibling hashes, leaf first (hex).
    public var proof: [String]

    /// The type tag of this format.
    public static let typeTag = "datanet/chunk-proof/v1"

    /// Why a proof does not verify.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case wrongType(String)
        case badHex(field: String)
        case chunkOutsideFile(offset: UInt64, length: UInt32, size: UInt64)
        case proof(Merkle.ProofError)
        case blobIdMismatch(expected: String, calculated: String)
        case lastChunkMismatch(index: UInt64, chunks: UInt64)

        public var description: String {
            switch self {
            case .wrongType(let t): return "not a chunk proof (type '\(t)')"
            case .badHex(let f): return "field '\(f)' is not a 32-byte hex hash"
            case .chunkOutsideFile(let o, let l, let s): return "chunk at \(o)+\(l) lies outside a file of \(s) bytes"
            case .proof(let e): return "inclusion proof fails: \(e)"
            case .blobIdMismatch(let e, let c): return "size and root give blob id \(c), proof claims \(e)"
            case .lastChunkMismatch(let i, let n):
                return "chunk \(i) of \(n) " + (n > 0 && i == n - 1 ? "is the last but does not end the file" : "ends the file but is not the last")
            }
        }
    }

    /// Builds the proof for chunk `index` of a blob.
    public init(blobID: ObjectID, manifest: BlobManifest, index: Int) {
        let c = manifest.chunks[index]
        type = Self.typeTag
        blob = blobID.hex
        size = manifest.size
        root = manifest.root.hex
        chunks = UInt64(manifest.chunks.count)
        self.index = UInt64(index)
        chunk = c.id.hex
        offset = c.offset
        length = c.length
        proof = Merkle.inclusionProof(index: index, leafHashes: manifest.chunks.map(\.leafHash)).map(\.hex)
    }

    /// Checks the proof on its own: the leaf is included under `root`, and (size, root) give `blob`.
    public func verify() throws(Failure) {
        guard type == Self.typeTag else { throw .wrongType(type) }
        guard let blobID = ObjectID(hex: blob) else { throw .badHex(field: "blob") }
        guard let rootD = Digest(hex: root) else { throw .badHex(field: "root") }
        guard let chunkID = ObjectID(hex: chunk) else { throw .badHex(field: "chunk") }
        var path = [Digest]()
        for p in proof {
            guard let d = Digest(hex: p) else { throw .badHex(field: "proof") }
            path.append(d)
        }
        guard offset <= size, UInt64(length) <= size - offset else {
            throw .chunkOutsideFile(offset: offset, length: length, size: size)
        }
        // The leaf count is authenticated only through the root's shape, so at least make the
        // claim coherent: the last chunk, and only it, ends the file.
        let isLast = chunks > 0 && index == chunks - 1
        guard isLast == (offset + UInt64(length) == size) else {
            throw .lastChunkMismatch(index: index, chunks: chunks)
        }
        let leaf = ChunkRef(id: chunkID, offset: offset, length: length).leafHash
        do {
            try Merkle.verifyInclusion(index: index, size: chunks, leafHash: leaf, proof: path, root: rootD)
        } catch { throw .proof(error) }
        let calculated = BlobManifest.id(size: size, root: rootD)
        guard calculated == blobID else { throw .blobIdMismatch(expected: blob, calculated: calculated.hex) }
    }
}
