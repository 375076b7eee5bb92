import DatanetCrypto
import DatanetObjects
import Foundation

/// A C2SP tlog-checkpoint (origin, size, root) and its signed-note form, signed by the
/// sequencer key in force at that size (schema/checkpoint.md).
public struct Checkpoint: Hashable, Sendable {
    /// `datanet/<hex Datanet id>`; also the signing key's name.
    public var origin: String
    public var size: UInt64
    public var root: Digest

    public init(origin: String, size: UInt64, root: Digest) {
        self.origin = origin; self.size = size; self.root = root
    }

    /// The origin and key name of a Datanet's checkpoints.
    public static func origin(of datanet: DatanetID) -> String { "datanet/" + datanet.hex }

    /// The note text that is signed: three lines, each ending in a newline.
    public var noteText: String { "\(origin)\n\(size)\n\(Data(root.bytes).base64EncodedString())\n" }

    /// The signed-note key id: the first four bytes, big-endian, of
    /// SHA-256(key name ‖ "\n" ‖ 0x01 ‖ Ed25519 public key).
    public static func keyID(name: String, key: PublicKey) -> UInt32 {
        let h = SHA256.hash(Array(name.utf8) + [0x0a, 0x01] + key.bytes).bytes
        return UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
    }

    /// The signed note: the text, a blank line, and one signature line
    /// "— <name> <base64(key id ‖ signature)>".
    public func signed(by key: SigningKey) throws -> String {
        let sig = try key.sign(Array(noteText.utf8))
        let id = Self.keyID(name: origin, key: key.publicKey)
        let blob = [UInt8(id >> 24), UInt8(truncatingIfNeeded: id >> 16), UInt8(truncatingIfNeeded: id >> 8), UInt8(truncatingIfNeeded: id)] + sig.bytes
        return noteText + "\n\u{2014} \(origin) \(Data(blob).base64EncodedString())\n"
    }

    /// Why a signed checkpoint is refused.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case noSignatureByKey
        case badSignature

        public var description: String {
            switch self {
            case .malformed(let why): return "malformed checkpoint: \(why)"
            case .noSignatureByKey: return "checkpoint carries no signature by the sequencer key in force"
            case .badSignature: return "checkpoint signature does not verify"
            }
        }
    }

    /// Parses a signed note and verifies the signature of `key` under the checkpoint's origin
    /// as key name. Other signatures (witness cosignatures) are ignored here.
    public static func verify(note: String, key: PublicKey) throws(Failure) -> Checkpoint {
        let (checkpoint, text, signatures) = try parse(note)
        let wantID = keyID(name: checkpoint.origin, key: key)
        var found = false
        for line in signatures.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            // C2SP signed-note: "— <name> <base64(key id ‖ signature)>". A line under another name
            // or key id (a witness cosignature, 76 bytes) is skipped whatever its length.
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "\u{2014}", !parts[1].isEmpty, !parts[1].contains("+"),
                  let b = CanonicalBase64.decode(String(parts[2])), b.count > 4 else {
                throw .malformed("a signature line is not \"— name base64\"")
            }
            let id = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
            guard parts[1] == checkpoint.origin, id == wantID else { continue }
            guard b.count == 68, let sig = try? Signature(bytes: Array(b[4...])),
                  key.isValidSignature(sig, for: Array(text.utf8)) else { throw .badSignature }
            found = true
        }
        guard found else { throw .noSignatureByKey }
        return checkpoint
    }

    /// The origin, size and root of a signed note, without checking any signature.
    public static func unverified(note: String) throws(Failure) -> Checkpoint { try parse(note).0 }

    private static func parse(_ note: String) throws(Failure) -> (Checkpoint, String, Substring) {
        let bytes = Array(note.utf8)
        guard bytes.count <= 1 << 16 else { throw .malformed("note too large") }
        guard let split = note.range(of: "\n\n") else { throw .malformed("no blank line before the signatures") }
        let text = String(note[..<split.lowerBound]) + "\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, let size = UInt64(lines[1]), String(size) == lines[1],
              let rootData = Data(base64Encoded: String(lines[2])), let root = Digest(bytes: rootData),
              Data(root.bytes).base64EncodedString() == lines[2] else {
            throw .malformed("the first three lines are not origin, decimal size and base64 root")
        }
        let checkpoint = Checkpoint(origin: String(lines[0]), size: size, root: root)
        guard lines.count == 3 else { throw .malformed("extension lines are not used by Datanet") }
        // One spelling per note: signature lines each end in a newline, with no empty line
        // among or after them (an extra newline made a second text that verified).
        let signatures = note[split.upperBound...]
        guard signatures.hasSuffix("\n"), !signatures.dropLast().split(separator: "\n", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw .malformed("the signature lines are not each \"— name base64\" ending in a newline")
        }
        return (checkpoint, text, signatures)
    }
}
