import DatanetCrypto
import DatanetObjects
import DatanetRecords
import Foundation
import Glibc

/// The identities of one store: `<store>/identities/<name>.key`, one file each.
///
/// Key files are created with O_EXCL and mode 0600 in a 0700 folder. Reading refuses
/// symbolic links, files that are not regular, files owned by someone else, and files the
/// group or others could read. A private key never leaves these files except sealed in a
/// backup.
public struct IdentityStore: Sendable {
    /// The folder holding the key files.
    public let directory: String

    /// The identities folder of the store at `storeDirectory`.
    /// The store's folder.
    public let storeDirectory: String

    public init(storeDirectory: String) {
        self.storeDirectory = storeDirectory
        directory = storeDirectory + "/identities"
    }

    func path(_ name: String) -> String { directory + "/" + name + ".key" }

    /// Deletes an identity's key file (only to undo a `save` whose purpose failed).
    public func remove(_ name: String) {
        guard Identity.isValidName(name) else { return }
        unlink(path(name))
    }

    private func ensureDirectory() throws {
        var st = stat()
        if lstat(directory, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw IdentityError.unsafeFile(path: directory, why: "not a folder (a symbolic link?)") }
            guard st.st_mode & 0o077 == 0 else {
                throw IdentityError.unsafeFile(path: directory, why: "the folder is open to group or others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 700 on it")
            }
            return
        }
        guard mkdir(directory, 0o700) == 0 else {
            throw IdentityError.unsafeFile(path: directory, why: String(cString: strerror(errno)))
        }
    }

    /// Writes a new identity's key file; fails if the name is taken.
    public func save(_ identity: Identity) throws {
        try ensureDirectory()
        let p = path(identity.name)
        let fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw IdentityError.exists(identity.name) }
            throw IdentityError.unsafeFile(path: p, why: String(cString: strerror(errno)))
        }
        let bytes = identity.keyFileBytes
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        close(fd)
        guard ok else {
            unlink(p)
            throw IdentityError.unsafeFile(path: p, why: "could not be written completely")
        }
    }

    /// Loads an identity by name, checking the file is safe to trust.
    public func load(_ name: String) throws -> Identity {
        guard Identity.isValidName(name) else { throw IdentityError.badName(name) }
        let p = path(name)
        // O_NONBLOCK: opening a FIFO planted under this name must not wait for a writer; the
        // fstat below then refuses it as not a regular file.
        let fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw IdentityError.notFound(name) }
            if errno == ELOOP { throw IdentityError.unsafeFile(path: p, why: "it is a symbolic link") }
            throw IdentityError.unsafeFile(path: p, why: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw IdentityError.unsafeFile(path: p, why: "not a regular file")
        }
        guard st.st_uid == geteuid() else { throw IdentityError.unsafeFile(path: p, why: "owned by another user") }
        guard st.st_mode & 0o077 == 0 else {
            throw IdentityError.unsafeFile(path: p, why: "readable or writable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600 \(p)")
        }
        guard st.st_size <= 4096 else { throw IdentityError.badKeyFile("\(p) is too large") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw IdentityError.unsafeFile(path: p, why: "could not be read")
        }
        let identity: Identity
        do { identity = try Identity(keyFileBytes: bytes) } catch IdentityError.badKeyFile(let why) {
            throw IdentityError.badKeyFile("\(p): \(why)")
        } catch {
            throw IdentityError.badKeyFile("\(p): \(error)")
        }
        guard identity.name == name else { throw IdentityError.badKeyFile("\(p) holds identity '\(identity.name)'") }
        return identity
    }

    /// Names of the identities, sorted.
    public func names() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".key") }.map { String($0.dropLast(4)) }.filter(Identity.isValidName).sorted()
    }

    /// The identity `--as NAME` chose, else the store's default (`datanet config identity`), else the only one.
    public func resolve(_ name: String?) throws -> Identity {
        if let name { return try load(name) }
        if let chosen = try StoreConfig(storeDirectory: storeDirectory).value("identity") { return try load(chosen) }
        let all = names()
        guard !all.isEmpty else { throw IdentityError.noIdentity }
        guard all.count == 1 else { throw IdentityError.ambiguous(all) }
        return try load(all[0])
    }
}

/// Encrypted identity backups: scrypt turns the passphrase into a key, ChaCha20-Poly1305
/// seals the key file. Layout (schema/identity.md):
/// "DNBK" ‖ version 1 ‖ log2(N) ‖ r ‖ p ‖ salt (16) ‖ nonce (12) ‖ sealed key file ‖ tag (16);
/// the 36-byte header is the associated data, so no parameter can be changed unseen.
public enum IdentityBackup {
    static let magic = Array("DNBK".utf8)
    /// Default cost: N = 2^17, r = 8, p = 1 (128 MiB, about half a second).
    public static let defaultLog2N: UInt8 = 17

    /// A passphrase to offer instead of a typed one: 125 random bits as five groups of five
    /// lower-case letters and digits (base 32 without look-alikes).
    public static func generatedPassphrase() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var rng = SystemRandomNumberGenerator()
        let chars = (0..<25).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] }
        return stride(from: 0, to: 25, by: 5).map { String(chars[$0..<$0 + 5]) }.joined(separator: "-")
    }

    /// Shortest passphrase a backup is sealed under, in characters.
    public static let minimumPassphrase = 12
    /// Largest scrypt cost a backup may ask for: N·r ≤ 2^21 (128·N·r bytes = 256 MiB of
    /// memory) and N·r·p ≤ 2^22 (four times the cost written, N = 2^17, r = 8, p = 1).
    static let maximumMemoryCost: UInt64 = 1 << 21, maximumWork: UInt64 = 1 << 22

    /// Seals `identity` under `passphrase` (at least `minimumPassphrase` characters).
    public static func seal(_ identity: Identity, passphrase: [UInt8], log2N: UInt8 = defaultLog2N) throws -> [UInt8] {
        let length = String(decoding: passphrase, as: UTF8.self).count
        guard length >= minimumPassphrase else {
            throw IdentityError.badBackup("the passphrase has \(length) character(s); a backup needs at least \(minimumPassphrase) (or --generate-passphrase)")
        }
        var salt = [UInt8](repeating: 0, count: 16), nonce = [UInt8](repeating: 0, count: 12)
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
        let header = magic + [1, log2N, 8, 1] + salt + nonce
        let key = try Scrypt.derive(passphrase: passphrase, salt: salt, n: 1 << UInt64(log2N), r: 8, p: 1, length: 32)
        return header + (try ChaChaPoly.seal(key: key, nonce: nonce, plaintext: identity.keyFileBytes, aad: header))
    }

    /// Opens a backup; a wrong passphrase and a damaged file give the same error.
    public static func open(_ bytes: [UInt8], passphrase: [UInt8]) throws -> Identity {
        guard bytes.count > 36 + ChaChaPoly.tagSize, Array(bytes[0..<4]) == magic else {
            throw IdentityError.badBackup("not a Datanet identity backup")
        }
        guard bytes[4] == 1 else { throw IdentityError.badBackup("backup version \(bytes[4]) is not supported") }
        let log2N = bytes[5], r = bytes[6], p = bytes[7]
        // Bounds keep a crafted file from demanding gigabytes or hours.
        let n = UInt64(1) << UInt64(min(log2N, 63))
        guard (10...20).contains(log2N), (1...16).contains(r), (1...4).contains(p),
              n * UInt64(r) <= maximumMemoryCost, n * UInt64(r) * UInt64(p) <= maximumWork else {
            throw IdentityError.badBackup("scrypt parameters out of range (N = 2^\(log2N), r = \(r), p = \(p): at most 256 MiB and 4× the written cost)")
        }
        let header = Array(bytes[0..<36])
        let key = try Scrypt.derive(passphrase: passphrase, salt: Array(bytes[8..<24]), n: 1 << UInt64(log2N),
                                    r: UInt64(r), p: UInt64(p), length: 32)
        let plain: [UInt8]
        do { plain = try ChaChaPoly.open(key: key, nonce: Array(bytes[24..<36]), sealed: Array(bytes[36...]), aad: header) }
        catch { throw IdentityError.badBackup("wrong passphrase, or the file was altered") }
        return try Identity(keyFileBytes: plain)
    }
}
