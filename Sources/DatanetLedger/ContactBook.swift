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
    /// Where the contact serves (`HOST:PORT`): a contact with an address is a peer (`datanet peer`).
    public internal(set) var address: String?
    /// For each Datanet (hex id), this store's queue position (`LedgerReader.queuePosition`)
    /// when the last two-way sync with this peer offered it every record queued before it:
    /// what is queued from there on has not been offered yet (`status`, `peer ls`).
    public internal(set) var queueSent: [String: UInt64]?

    enum CodingKeys: String, CodingKey {
        case name, ed25519, x25519, held, address
        case queueSent = "queue_sent"
        case x25519Signature = "x25519_signature"
        case addedMs = "added_ms"
    }

    /// A contact from a public identity file (its certification checked) under `name`.
    public init(_ identity: PublicIdentity, name: String, addedMs: UInt64) throws {
        let key = try identity.verified()
        (self.name, ed25519, x25519, x25519Signature, self.addedMs) = (name, key.description, identity.x25519.lowercased(), identity.x25519Signature.lowercased(), addedMs)
        try check()
    }

    /// A contact known by its Ed25519 key alone (nothing can be sealed to it), and where it serves.
    public init(key: PublicKey, name: String, addedMs: UInt64, address: String? = nil) throws {
        (self.name, ed25519, x25519, x25519Signature, self.addedMs, self.address) = (name, key.description, nil, nil, addedMs, address)
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
        if let address, Self.hostAndPort(address) == nil {
            throw IdentityError.badPublicIdentity("the address of contact '\(name)' is not HOST:PORT")
        }
        for (what, table) in [("size", held), ("queue position", queueSent)] {
            if let table, table.count > 100_000 || table.keys.contains(where: { DatanetID(hex: $0) == nil }) {
                throw IdentityError.badPublicIdentity("contact '\(name)' holds a Datanet \(what) under a key that is not a 64-digit Datanet id")
            }
        }
    }
}

extension Contact {
    /// `HOST:PORT` split, or nil: a host of 1–253 letters, digits, dots and hyphens (a name or
    /// a dotted IPv4 address) and a port 1–65535.
    public static func hostAndPort(_ text: String) -> (host: String, port: UInt16)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon]), portText = text[text.index(after: colon)...]
        guard (1...253).contains(host.utf8.count),
              host.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }),
              (1...5).contains(portText.count), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let port = UInt16(portText), port > 0 else { return nil }
        return (host, port)
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

    /// Records a sync with peer `name` of Datanet `d`: it holds the log up to `size` (a larger
    /// size already known stays) and, when given, was offered every record this store queued
    /// before `queueSent`.
    public func recordSynced(_ name: String, datanet d: DatanetID, size: UInt64, queueSent: UInt64?) throws {
        try update { list in
            guard let i = list.firstIndex(where: { $0.name == name }) else { throw IdentityError.noContact(name) }
            list[i].held = (list[i].held ?? [:]).merging([d.hex: size]) { max($0, $1) }
            if let queueSent { list[i].queueSent = (list[i].queueSent ?? [:]).merging([d.hex: queueSent]) { max($0, $1) } }
        }
    }

    /// Sets (or, with nil, removes) the address of contact `name`, and with `key` pins a new
    /// key for it (the caller has the user's word for it).
    public func setAddress(_ name: String, _ address: String?, key: PublicKey? = nil) throws {
        if let address, Contact.hostAndPort(address) == nil { throw IdentityError.badPublicIdentity("'\(address)' is not HOST:PORT") }
        try update { list in
            guard let i = list.firstIndex(where: { $0.name == name }) else { throw IdentityError.noContact(name) }
            list[i].address = address
            if let key, key.description != list[i].ed25519 {
                if let other = list.first(where: { $0.ed25519 == key.description }) { throw IdentityError.contactKeyKnown(key.description, as: other.name) }
                // A new key voids what was certified and learned under the old one.
                (list[i].ed25519, list[i].x25519, list[i].x25519Signature, list[i].held, list[i].queueSent) = (key.description, nil, nil, nil, nil)
            }
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
