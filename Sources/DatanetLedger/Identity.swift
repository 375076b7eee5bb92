import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import Foundation

/// A person's or node's identity: an Ed25519 key (its public key is the id) and an X25519 key
/// for sealing data to it, certified by an Ed25519 signature (schema/identity.md).
public final class Identity: @unchecked Sendable {
    /// The local name (`--as NAME`); not part of any signed data.
    public let name: String
    public let signingKey: SigningKey
    public let agreementKey: X25519PrivateKey
    /// Unix milliseconds.
    public let createdAt: UInt64

    /// Creates a new identity with fresh keys from the system RNG.
    public convenience init(name: String) throws {
        try self.init(name: name, signingKey: SigningKey(), agreementKey: X25519PrivateKey(),
                      createdAt: UInt64(Date().timeIntervalSince1970 * 1000))
    }

    init(name: String, signingKey: SigningKey, agreementKey: X25519PrivateKey, createdAt: UInt64) throws {
        guard Identity.isValidName(name) else { throw IdentityError.badName(name) }
        // Seed-derived keys always pass; checked so no identity can carry a key libsodium refuses.
        guard signingKey.publicKey.isUsable else { throw IdentityError.badKeyFile("its Ed25519 key is not a usable point") }
        self.name = name
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.createdAt = createdAt
    }

    /// Names are 1–64 of [a-z0-9._-], not starting with '.': safe as file names everywhere.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...64).contains(bytes.count) && bytes[0] != UInt8(ascii: ".") && bytes.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d
        }
    }

    /// The Ed25519 public key: the identity's id.
    public var publicKey: PublicKey { signingKey.publicKey }

    /// The message certifying the X25519 key: "datanet/v1/x25519-key" ‖ 0x00 ‖ x25519 public.
    public static func agreementKeyMessage(_ x25519: [UInt8]) -> [UInt8] {
        Array("datanet/v1/x25519-key".utf8) + [0] + x25519
    }

    /// What others may know: both public keys and the certification.
    public func publicIdentity() throws -> PublicIdentity {
        PublicIdentity(name: name, publicKey: publicKey, agreementKey: agreementKey.publicKey,
                       certification: try signingKey.sign(Identity.agreementKeyMessage(agreementKey.publicKey)))
    }

    /// The key file's bytes: CBOR {0: "datanet/v1/identity", 1: name, 2: Ed25519 seed,
    /// 3: X25519 private key, 4: created-at}. Secret: written only to 0600 files and sealed backups.
    var keyFileBytes: [UInt8] {
        CBOR.map([
            .init(.unsigned(0), .string(Identity.fileTag)), .init(.unsigned(1), .string(name)),
            .init(.unsigned(2), .bytes(signingKey.seed)), .init(.unsigned(3), .bytes(agreementKey.raw)),
            .init(.unsigned(4), .unsigned(createdAt)),
        ]).encoded
    }

    static let fileTag = "datanet/v1/identity"

    /// Parses key-file bytes.
    convenience init(keyFileBytes bytes: [UInt8]) throws {
        guard let item = try? CBOR.decode(bytes), case .map(let entries) = item else { throw IdentityError.badKeyFile("not canonical CBOR") }
        var f = [UInt64: CBOR]()
        for e in entries { if let k = e.key.unsignedValue { f[k] = e.value } }
        guard f.count == entries.count, f.count == 5, f[0] == .string(Identity.fileTag),
              case .text(let nameBytes)? = f[1], let seed = f[2]?.bytesValue, let x = f[3]?.bytesValue,
              let created = f[4]?.unsignedValue
        else { throw IdentityError.badKeyFile("not a Datanet identity") }
        try self.init(name: String(decoding: nameBytes, as: UTF8.self), signingKey: SigningKey(seed: seed),
                      agreementKey: X25519PrivateKey(raw: x), createdAt: created)
    }
}

/// The public half of an identity, as `datanet id export` prints it.
public struct PublicIdentity: Codable, Equatable, Sendable {
    public var type = "datanet/identity/v1"
    public var name: String
    public var ed25519: String
    public var x25519: String
    /// Ed25519 signature over `Identity.agreementKeyMessage(x25519)`.
    public var x25519Signature: String

    enum CodingKeys: String, CodingKey {
        case type, name, ed25519, x25519
        case x25519Signature = "x25519_signature"
    }

    init(name: String, publicKey: PublicKey, agreementKey: [UInt8], certification: Signature) {
        self.name = name
        ed25519 = Hex.encode(publicKey.bytes)
        x25519 = Hex.encode(agreementKey)
        x25519Signature = Hex.encode(certification.bytes)
    }

    /// Checks the certification; returns the Ed25519 key.
    public func verified() throws -> PublicKey {
        guard type == "datanet/identity/v1", let k = Hex.decode(ed25519), let x = Hex.decode(x25519), x.count == 32,
              let s = Hex.decode(x25519Signature) else { throw IdentityError.badPublicIdentity("malformed fields") }
        let key = try PublicKey(bytes: k)
        guard key.isUsable else { throw IdentityError.badPublicIdentity("the Ed25519 key is of small order or not canonical") }
        guard key.isValidSignature(try Signature(bytes: s), for: Identity.agreementKeyMessage(x)) else {
            throw IdentityError.badPublicIdentity("the X25519 key is not certified by the Ed25519 key")
        }
        return key
    }
}

/// Why an identity operation failed.
public enum IdentityError: Error, Equatable, CustomStringConvertible {
    case badName(String)
    case exists(String)
    case notFound(String)
    case ambiguous([String])
    case noIdentity
    case unsafeFile(path: String, why: String)
    case badKeyFile(String)
    case badBackup(String)
    case badPublicIdentity(String)
    /// The contacts or config file is damaged (path, what is wrong).
    case badFile(String, String)
    /// No contact has this name.
    case noContact(String)
    /// A contact of this name exists (with this key).
    case contactExists(String, key: String)
    /// This key is already a contact, under that name.
    case contactKeyKnown(String, as: String)

    public var description: String {
        switch self {
        case .badName(let n): return "'\(n)' is not a valid identity name (1-64 of a-z 0-9 . _ -, not starting with '.')"
        case .exists(let n): return "an identity named '\(n)' already exists"
        case .notFound(let n): return "no identity named '\(n)' (see `datanet id ls`)"
        case .ambiguous(let names): return "several identities (\(names.joined(separator: ", "))); choose one with --as NAME, or set a default with `datanet config identity NAME`"
        case .noIdentity: return "no identity in this store; create one with `datanet id new NAME`"
        case .unsafeFile(let p, let why): return "refusing key file \(p): \(why)"
        case .badKeyFile(let why): return "key file is damaged: \(why)"
        case .badBackup(let why): return "cannot restore: \(why)"
        case .badPublicIdentity(let why): return "invalid public identity: \(why)"
        case .badFile(let p, let why): return "\(p): \(why)"
        case .noContact(let n): return "no contact named '\(n)' (see `datanet id ls`)"
        case .contactExists(let n, let key): return "a contact named '\(n)' already exists (\(key)); `datanet id rm \(n)` first to replace it"
        case .contactKeyKnown(let key, let n): return "\(key) is already the contact '\(n)'"
        }
    }
}
