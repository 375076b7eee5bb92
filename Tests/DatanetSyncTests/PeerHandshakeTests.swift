import DatanetCrypto
@testable import DatanetSync
import Testing

/// The identity check of a handshake: each side's certificate binds its transport key to its
/// Datanet key; an expired, mis-signed or misbound one ends the handshake.
@Suite struct PeerHandshakeTests {
    static let now: UInt64 = 1_800_000_000

    /// Runs a handshake to its end, or throws its first error.
    static func run(_ i: inout PeerHandshake, _ r: inout PeerHandshake) throws {
        try r.read(try i.write())
        try i.read(try r.write())
        try r.read(try i.write())
    }

    static func isCertificateError(_ error: any Error, _ words: String) -> Bool {
        if case .certificate(let why)? = error as? NoiseError { why.contains(words) } else { false }
    }

    @Test func eachSideLearnsTheOthersIdentity() throws {
        let alice = try SigningKey(), bob = try SigningKey()
        var i = try PeerHandshake(role: .initiator, identity: alice, now: Self.now)
        var r = try PeerHandshake(role: .responder, identity: bob, now: Self.now)
        try Self.run(&i, &r)
        #expect(i.peer == bob.publicKey && r.peer == alice.publicKey)
        var (a, b) = (try i.channel(), try r.channel())
        #expect(try b.receive(try a.seal(Array("hello".utf8))) == [Array("hello".utf8)])
        // The transport key is the identity's own: the same every time, not its seed or sealing key.
        #expect(try TransportCertificate.transportKey(of: alice).publicKey == (try TransportCertificate.transportKey(of: alice)).publicKey)
        #expect(try TransportCertificate.transportKey(of: alice).publicKey != (try TransportCertificate.transportKey(of: bob)).publicKey)
    }

    @Test func anExpiredCertificateEndsTheHandshake() throws {
        // Bob's clock is two days behind: his one-day certificate expired by Alice's clock.
        var i = try PeerHandshake(role: .initiator, identity: try SigningKey(), now: Self.now)
        var r = try PeerHandshake(role: .responder, identity: try SigningKey(), now: Self.now - 2 * 86_400)
        try r.read(try i.write())
        #expect(performing: { try i.read(try r.write()) }, throws: { Self.isCertificateError($0, "expired") })
        #expect(i.peer == nil)
        #expect(throws: NoiseError.outOfTurn) { _ = try i.channel() }
    }

    /// A certificate altered after signing, one for another transport key, one of the wrong
    /// size or version: each ends the handshake with the reason named.
    @Test func forgedCertificatesEndTheHandshake() throws {
        let mallory = try SigningKey()
        let key = try TransportCertificate.transportKey(of: mallory)
        let honest = try TransportCertificate(identity: mallory, transportKey: key.publicKey, expiry: Self.now + 60)
        var later = honest.encoded
        later[72] ^= 0x01  // the expiry's last byte: the signature no longer covers it
        let otherKey = try TransportCertificate(identity: mallory, transportKey: (try X25519PrivateKey()).publicKey, expiry: Self.now + 60)
        var version2 = honest.encoded
        version2[0] = 2
        let cases: [([UInt8], String)] = [(later, "not signed by the identity"), (otherKey.encoded, "another transport key"),
                                          (Array(honest.encoded.dropLast()), "is 136 bytes"), (version2, "version 2")]
        for (payload, words) in cases {
            var i = try PeerHandshake(role: .initiator, identity: try SigningKey(), now: Self.now)
            var r = NoiseHandshake(role: .responder, staticKey: key, prologue: PeerHandshake.prologue)
            _ = try r.readMessage(try i.write())
            #expect("\(words)", performing: { try i.read(try r.writeMessage(payload)) }, throws: { Self.isCertificateError($0, words) })
        }
        // The first message carries nothing.
        var noisy = NoiseHandshake(role: .initiator, staticKey: try X25519PrivateKey(), prologue: PeerHandshake.prologue)
        var r = try PeerHandshake(role: .responder, identity: try SigningKey(), now: Self.now)
        #expect(performing: { try r.read(try noisy.writeMessage([1])) }, throws: { Self.isCertificateError($0, "unexpected bytes") })
    }

    @Test func certificatesRoundTrip() throws {
        let id = try SigningKey()
        let c = try TransportCertificate(identity: id, transportKey: (try X25519PrivateKey()).publicKey, expiry: 0x0102_0304_0506_0708)
        #expect(c.encoded.count == TransportCertificate.size)
        #expect(try TransportCertificate(encoded: c.encoded) == c)
        #expect(throws: CryptoError.self) { _ = try TransportCertificate(identity: id, transportKey: [1, 2], expiry: 1) }
    }
}
