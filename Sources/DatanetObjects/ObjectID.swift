import DatanetCrypto

/// Tag of `ObjectID`; never instantiated.
public enum ObjectIDTag {}

/// The id of a content object (chunk, blob or tree): what `add` prints, trees and
/// contributions name, and the object tables are keyed by. A blob's Merkle root and the
/// leaf hashes under it are hashes, not ids, and stay `Digest`.
public typealias ObjectID = ID<ObjectIDTag>
