import DatanetCrypto
import DatanetObjects
import DatanetRecords
import Foundation
import Glibc

/// Another person's or node's public identity, kept under a local name (schema/identity.md
/// "Contacts"). Only the Ed25519 key is required; the X25519 key, when known, is certified.
public struct Contact: Codable, Equatable, Sendable {
    // Set only inside this module, where every contact is checked when made and when read.
    public internal(set) var name: String
    public internal(set) var ed25519: String
    public internal(set) var x25519: String?
    public internal(set) var x25519Signature: String?
    /// Unix milliseconds when it was imported.
    public internal(set) var addedMs: UInt64
    /// How far this contact is known to hold each Datanet (hex id → log size), learned from the
    /// bundles imported from them (`bundle import --from`): where `bundle export --for` starts.
    public internal(set) var held: [String: UInt64]?

    enum CodingKeys: String, CodingKey {
        case name, ed25519, x25519, held
        case x25519Signature = "x25519_signature"
        case addedMs = "added_ms"
    }

    /// A contact from a public identity file (its certification checked) under `name`.
    public init(_ identity: PublicIdentity, name: String, addedMs: UInt64) throws {
        let key = try identity.verified()
        (self.name, ed25519, x25519, x25519Signature, self.addedMs) = (name, key.description, identity.x25519.lowercased(), identity.x25519Signature.lowercased(), addedMs)
        try check()
    }

    /// A contact known by its Ed25519 key alone (nothing can be sealed to it).
    public init(key: PublicKey, name: String, addedMs: UInt64) throws {
        (self.name, ed25519, x25519, x25519Signature, self.addedMs) = (name, key.description, nil, nil, addedMs)
        try check()
    }

    /// The Ed25519 key (checked when the contact was read).
    public var publicKey: PublicKey { try! PublicKey(bytes: Hex.decode(ed25519)!) }

    /// The certified X25519 key, if known.
    public var agreementKey: [UInt8]? { x25519.flatMap(Hex.decode) }

    /// The public identity file `datanet id export` writes, when the X25519 key is known.
    public var publicIdentity: PublicIdentity? {
        guard let x = agreementKey, let s = x25519Signature.flatMap(Hex.decode), let sig = try? Signature(bytes: s) else { return nil }
        return PublicIdentity(name: name, publicKey: publicKey, agreementKey: x, certification: sig)
    }

    /// Checks the name, that the key is usable and, when an X25519 key is given, its certification.
    func check() throws {
        guard Identity.isValidName(name) else { throw IdentityError.badName(name) }
        guard ed25519.utf8.count == 64, let k = Hex.decode(ed25519), let key = try? PublicKey(bytes: k), key.isUsable, ed25519 == key.description else {
            throw IdentityError.badPublicIdentity("the Ed25519 key of contact '\(name)' is not a usable key in 64 lower-case hex digits")
        }
        switch (x25519, x25519Signature) {
        case (nil, nil): break
        case (let x?, let s?):
            guard x.utf8.count == 64, let xb = Hex.decode(x), let sb = Hex.decode(s),
                  let sig = try? Signature(bytes: sb), key.isValidSignature(sig, for: Identity.agreementKeyMessage(xb)) else {
                throw IdentityError.badPublicIdentity("the X25519 key of contact '\(name)' is not certified by its Ed25519 key")
            }
        default:
            throw IdentityError.badPublicIdentity("contact '\(name)' has an X25519 key without its certification, or the reverse")
        }
        if let held, held.count > 100_000 || held.keys.contains(where: { DatanetID(hex: $0) == nil }) {
            throw IdentityError.badPublicIdentity("contact '\(name)' holds a Datanet size under a key that is not a 64-digit Datanet id")
        }
    }
}

/// The contacts of one store: `<store>/contacts.json`, replaced atomically under an exclusive
/// lock, so concurrent imports never lose one another.
public struct ContactBook: Sendable {
    /// The contacts file.
    public let path: String
    /// Most contacts a book holds (the file stays small enough to read on every command).
    public static let maximumCount = 10_000

    public init(storeDirectory: String) { path = storeDirectory + "/contacts.json" }

    struct File: Codable {
        var version = 1
        var contacts: [Contact]
    }

    /// Every contact, sorted by name; an absent file is an empty book.
    /// - Throws: `IdentityError.badFile` naming the problem when the file is damaged.
    public func all() throws -> [Contact] {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return [] }
            throw IdentityError.badFile(path, String(cString: strerror(errno)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else { throw IdentityError.badFile(path, "not a regular file") }
        guard st.st_size <= 8 << 20, let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError.badFile(path, "unreadable or larger than 8 MiB")
        }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw IdentityError.badFile(path, "not a contacts file (\(error))")
        }
        guard file.version == 1 else { throw IdentityError.badFile(path, "version \(file.version) is not 1") }
        guard file.contacts.count <= Self.maximumCount else { throw IdentityError.badFile(path, "more than \(Self.maximumCount) contacts") }
        var seen = Set<String>()
        for c in file.contacts {
            do { try c.check() } catch { throw IdentityError.badFile(path, "\(error)") }
            guard seen.insert(c.name).inserted else { throw IdentityError.badFile(path, "the name '\(c.name)' appears twice") }
        }
        return file.contacts.sorted { $0.name < $1.name }
    }

    /// The contact named `name`, if any.
    public func contact(named name: String) throws -> Contact? { try all().first { $0.name == name } }

    /// Adds a contact; refuses a name or key already in the book, or a name of a local identity.
    public func add(_ c: Contact, identities: IdentityStore) throws {
        try c.check()
        if identities.names().contains(c.name) { throw IdentityError.exists(c.name) }
        try update { list in
            if let same = list.first(where: { $0.name == c.name }) {
                throw IdentityError.contactExists(c.name, key: same.ed25519)
            }
            if let same = list.first(where: { $0.ed25519 == c.ed25519 }) {
                throw IdentityError.contactKeyKnown(c.ed25519, as: same.name)
            }
            guard list.count < Self.maximumCount else { throw IdentityError.badFile(path, "already holds \(Self.maximumCount) contacts") }
            list.append(c)
        }
    }

    /// Records that contact `name` holds Datanet `d` up to `size` (a larger size already known stays).
    public func recordHeld(_ name: String, datanet d: DatanetID, size: UInt64) throws {
        try update { list in
            guard let i = list.firstIndex(where: { $0.name == name }) else { throw IdentityError.noContact(name) }
            list[i].held = (list[i].held ?? [:]).merging([d.hex: size]) { max($0, $1) }
        }
    }

    /// Removes the contact `name`; throws `.noContact` when there is none.
    public func remove(_ name: String) throws {
        try update { list in
            guard let i = list.firstIndex(where: { $0.name == name }) else { throw IdentityError.noContact(name) }
            list.remove(at: i)
        }
    }

    /// Reads, changes and atomically replaces the file under an exclusive lock on `<path>.lock`.
    private func update(_ change: (inout [Contact]) throws -> Void) throws {
        let lockPath = path + ".lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw IdentityError.badFile(lockPath, String(cString: strerror(errno))) }
        defer { flock(lock, LOCK_UN); close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw IdentityError.badFile(lockPath, String(cString: strerror(errno))) }
        var list = try all()
        try change(&list)
        try replaceFile(path, with: try sortedJSON(File(contacts: list.sorted { $0.name < $1.name })))
    }
}
