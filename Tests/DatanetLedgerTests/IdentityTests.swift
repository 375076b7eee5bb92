import DatanetCrypto
@testable import DatanetLedger
@testable import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Foundation
import Glibc
import Testing

@Suite struct IdentityTests {
    func tempStore() -> String {
        let dir = NSTemporaryDirectory() + "datanet-id-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func newSaveLoadAndSafeFiles() throws {
        let dir = tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = IdentityStore(storeDirectory: dir)
        let alice = try Identity(name: "alice")
        try store.save(alice)
        #expect(throws: IdentityError.exists("alice")) { try store.save(Identity(name: "alice")) }
        let loaded = try store.load("alice")
        #expect(loaded.publicKey == alice.publicKey)
        #expect(loaded.agreementKey.publicKey == alice.agreementKey.publicKey)
        var st = stat()
        #expect(stat(store.path("alice"), &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(stat(store.directory, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(try store.resolve(nil).name == "alice")
        try store.save(Identity(name: "bob"))
        #expect(store.names() == ["alice", "bob"])
        #expect(throws: IdentityError.ambiguous(["alice", "bob"])) { try store.resolve(nil) }
        #expect(throws: IdentityError.notFound("carol")) { try store.load("carol") }
        #expect(throws: IdentityError.badName("../x")) { try store.load("../x") }
        // A group-readable key file is refused, with the fix in the message.
        chmod(store.path("bob"), 0o640)
        #expect { try store.load("bob") } throws: { e in if case .unsafeFile(_, let why)? = e as? IdentityError { why.contains("chmod 600") } else { false } }
        chmod(store.path("bob"), 0o600)
        _ = try store.load("bob")
        // A symbolic link in place of a key file is refused.
        symlink(store.path("alice"), store.path("mallory"))
        #expect { try store.load("mallory") } throws: { e in if case .unsafeFile(_, let why)? = e as? IdentityError { why.contains("symbolic link") } else { false } }
    }

    @Test func publicIdentityCertifiesTheAgreementKey() throws {
        let id = try Identity(name: "alice")
        var pub = try id.publicIdentity()
        #expect(try pub.verified() == id.publicKey)
        let json = try JSONEncoder().encode(pub)
        #expect(!String(decoding: json, as: UTF8.self).contains(Hex.encode(id.signingKey.seed)))
        pub.x25519 = Hex.encode(try X25519PrivateKey().publicKey)
        #expect(throws: IdentityError.self) { try pub.verified() }
    }

    @Test func backupRoundTripAndRefusals() throws {
        let id = try Identity(name: "alice")
        let pass = Array("correct horse battery staple".utf8)
        let sealed = try IdentityBackup.seal(id, passphrase: pass, log2N: 12)
        #expect(!Hex.encode(sealed).contains(Hex.encode(id.signingKey.seed)))
        let back = try IdentityBackup.open(sealed, passphrase: pass)
        #expect(back.publicKey == id.publicKey && back.name == "alice")
        #expect(back.agreementKey.raw == id.agreementKey.raw)
        #expect(throws: IdentityError.self) { try IdentityBackup.open(sealed, passphrase: Array("wrong".utf8)) }
        // Every byte matters: header bytes are authenticated, the rest is sealed.
        for i in stride(from: 0, to: sealed.count, by: 7) {
            var bad = sealed
            bad[i] ^= 0x01
            #expect(throws: IdentityError.self, "byte \(i)") { try IdentityBackup.open(bad, passphrase: pass) }
        }
        var greedy = sealed
        greedy[5] = 30 // log2(N) = 30 would need 128 GiB: refused before any work
        #expect { try IdentityBackup.open(greedy, passphrase: pass) } throws: { e in if case .badBackup(let why)? = e as? IdentityError { why.contains("out of range") } else { false } }
        #expect(throws: IdentityError.self) { try IdentityBackup.open(Array(sealed.prefix(40)), passphrase: pass) }
        #expect(throws: IdentityError.self) { try IdentityBackup.seal(id, passphrase: []) }
        // Costs past 256 MiB of memory or four times the written work are refused before any
        // work (N = 2^20 with r = 16 took 2.1 GB and 14 s when it was accepted).
        for (log2N, r, p) in [(20, 16, 1), (19, 8, 1), (18, 8, 4), (20, 2, 4)] as [(UInt8, UInt8, UInt8)] {
            var costly = sealed
            (costly[5], costly[6], costly[7]) = (log2N, r, p)
            #expect { try IdentityBackup.open(costly, passphrase: pass) } throws: { e in
                if case .badBackup(let why)? = e as? IdentityError { why.contains("out of range") } else { false }
            }
        }
    }

    /// A backup needs a passphrase of at least 12 characters; the generated one offered
    /// instead has 25 random characters (125 bits) and differs every time.
    @Test func backupPassphrasesHaveAMinimumLength() throws {
        let id = try Identity(name: "carol")
        #expect { try IdentityBackup.seal(id, passphrase: Array("eleven char".utf8), log2N: 10) } throws: { e in
            if case .badBackup(let why)? = e as? IdentityError { why.contains("at least 12") } else { false }
        }
        _ = try IdentityBackup.seal(id, passphrase: Array("twelve chars".utf8), log2N: 10)
        let generated = IdentityBackup.generatedPassphrase()
        #expect(generated.count == 29 && generated.split(separator: "-").map(\.count) == [5, 5, 5, 5, 5])
        #expect(generated != IdentityBackup.generatedPassphrase())
        let back = try IdentityBackup.open(try IdentityBackup.seal(id, passphrase: Array(generated.utf8), log2N: 10),
                                           passphrase: Array(generated.utf8))
        #expect(back.publicKey == id.publicKey)
    }

    /// The contacts file is a decoder of a file anyone with the store may edit: mutated (JSON
    /// values of every kind, raw bytes), it is read as contacts that all check out, or refused
    /// with the file named; never a crash (every key it hands out decodes).
    @Test func mutatedContactFilesNeverCrash() throws {
        let dir = tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let book = ContactBook(storeDirectory: dir)
        let ids = IdentityStore(storeDirectory: dir)
        for name in ["carol", "dave"] {
            try book.add(try Contact(try Identity(name: name).publicIdentity(), name: name, addedMs: 7), identities: ids)
        }
        try book.add(try Contact(key: try Identity(name: "x").publicKey, name: "erin", addedMs: 8), identities: ids)
        try book.recordHeld("carol", datanet: DatanetID(SHA256.hash([1])), size: 12)
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: book.path)))
        let tree = try #require(JSONTree.parse(original))
        var rng = SplitMix64(seed: 0xC0_47AC7)
        var read = 0, refused = 0
        for round in 0..<3_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                var t = tree
                for _ in 0...rng.below(3) { rng.mutate(&t) }
                bytes = t.serialized
            } else {
                bytes = original
                rng.mutate(&bytes)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: book.path))
            do {
                let contacts = try book.all()
                read += 1
                for c in contacts { _ = c.publicKey; _ = c.publicIdentity }
            } catch IdentityError.badFile(let path, _) {
                #expect(path == book.path)
                refused += 1
            }
        }
        #expect(read > 0 && refused > 0)
        // The settings file beside it: read as text values, or refused naming it.
        let config = StoreConfig(storeDirectory: dir)
        try config.set("identity", "carol")
        let settings = Array(try Data(contentsOf: URL(fileURLWithPath: config.path)))
        var settingsRead = 0
        for _ in 0..<2_000 {
            var bytes = settings
            rng.mutate(&bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: config.path))
            do { _ = try config.all(); settingsRead += 1 } catch IdentityError.badFile(let path, _) { #expect(path == config.path) }
        }
        #expect(settingsRead > 0)
    }

    /// A peer's address is HOST:PORT and nothing else; no input traps.
    @Test func peerAddressesAreReadStrictly() {
        #expect(Contact.hostAndPort("127.0.0.1:7420")! == ("127.0.0.1", 7420))
        #expect(Contact.hostAndPort("peer-1.example.org:65535")! == ("peer-1.example.org", 65535))
        let long = String(repeating: "a", count: 254)
        for bad in ["", ":", "a:", ":1", "a:0", "a:65536", "a:99999", "a:1x", "a:-1", "a: 1", "a b:1", "é:1", "[::1]:1", "a:1:", long + ":1",
                    "a:000001", "a:+1", "a:1\n", "a/b:1"] {
            #expect(Contact.hostAndPort(bad) == nil, "\(bad)")
        }
        var rng = SplitMix64(seed: 0xadd7)
        for _ in 0..<20_000 {
            var b = Array("node.example:7420".utf8)
            rng.mutate(&b)
            if let (host, port) = Contact.hostAndPort(String(decoding: b, as: UTF8.self)) { #expect(!host.isEmpty && port > 0) }
        }
    }
}
