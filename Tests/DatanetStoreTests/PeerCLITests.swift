import DatanetCrypto
import DatanetSync
import Foundation
import Testing

/// `datanet peer`: a peer's key pinned on first use from the handshake, a changed key refused
/// with both keys shown unless --repin, --key without connecting, and the refusals.
@Suite struct PeerCLITests {
    typealias Session = LedgerCLITests.Session

    /// Answers one handshake on `listener` as `identity`; gives the identity the client proved.
    static func serveOnce(_ listener: TCPListener, as identity: SigningKey) -> Parallel.Running<PublicKey> {
        Parallel.start {
            try PeerConnection.open(try listener.accept(timeout: 20), role: .responder, identity: identity,
                                    now: UInt64(Date().timeIntervalSince1970)).peer
        }
    }

    @Test func peersArePinnedOnFirstUseAndTheirKeyChangesRefused() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "me"])
        try s.ok(["config", "identity", "me"])
        let me = try #require((try s.json(["id", "show", "me"]) as? [String: Any])?["ed25519"] as? String)
        let lab = try SigningKey(), impostor = try SigningKey()
        let listener = try TCPListener(port: 0)
        let address = "127.0.0.1:\(listener.port)"

        var served = Self.serveOnce(listener, as: lab)
        let added = try s.ok(["peer", "add", "lab", address])
        #expect(added.contains(lab.publicKey.description) && added.contains("pinned on first use"), "\(added)")
        #expect(try served.wait().description == me, "the peer saw this store's identity")
        #expect(try s.ok(["peer", "ls"]).contains("lab  \(address)  \(lab.publicKey)"))

        // The same key again: kept, not a first use.
        served = Self.serveOnce(listener, as: lab)
        #expect(!(try s.ok(["peer", "add", "lab", address])).contains("first use"))
        _ = try served.wait()

        // Another key at that address: refused, both keys named, contacts unchanged.
        let before = try String(contentsOfFile: s.store + "/contacts.json", encoding: .utf8)
        served = Self.serveOnce(listener, as: impostor)
        let r = try s.run(["peer", "add", "lab", address])
        #expect(r.status == 1 && r.stderr.contains(lab.publicKey.description) && r.stderr.contains(impostor.publicKey.description)
                && r.stderr.contains("--repin"), "\(r.stderr)")
        #expect(try String(contentsOfFile: s.store + "/contacts.json", encoding: .utf8) == before)
        _ = try? served.wait()
        served = Self.serveOnce(listener, as: impostor)
        try s.ok(["peer", "add", "lab", address, "--repin"])
        _ = try served.wait()
        #expect(try s.ok(["peer", "ls"]).contains(impostor.publicKey.description))

        // --key: no connection; a bad address; nothing listening; rm keeps the contact.
        try s.ok(["peer", "add", "mirror", "10.9.8.7:7420", "--key", lab.publicKey.description])
        #expect(try s.run(["peer", "add", "x", "nowhere"]).status == 2)
        #expect(try s.run(["peer", "add", "x", "127.0.0.1:0"]).status == 2)
        let closed = try TCPListener(port: 0).port
        let refused = try s.run(["peer", "add", "y", "127.0.0.1:\(closed)"])
        #expect(refused.status == 1 && refused.stderr.contains("127.0.0.1:\(closed)"), "\(refused.stderr)")
        try s.ok(["peer", "rm", "mirror"])
        #expect(!(try s.ok(["peer", "ls"])).contains("mirror"))
        #expect(try s.ok(["id", "ls"]).contains("mirror"))
        #expect(try s.run(["peer", "rm", "mirror"]).status == 1)
        let peers = try #require(try s.json(["peer", "ls"]) as? [[String: Any]])
        #expect(peers.map { $0["name"] as? String } == ["lab"])
    }
}
