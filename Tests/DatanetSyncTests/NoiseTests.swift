import DatanetCrypto
@testable import DatanetSync
import Foundation
import Testing

/// The Noise XX handshake and transport against the published vectors (Vectors/
/// noise_xx_vectors.json: cacophony v0.11.0 and snow 0.10.0, their XX_25519_ChaChaPoly_SHA256
/// entries), and the refusals a session ends on.
@Suite struct NoiseTests {
    struct Vector: Decodable {
        struct Message: Decodable { let payload: String, ciphertext: String }
        let source: String
        let init_prologue: String, init_static: String, init_ephemeral: String
        let resp_prologue: String, resp_static: String, resp_ephemeral: String
        let handshake_hash: String?
        let messages: [Message]
    }

    static func vectors() throws -> [Vector] {
        let url = try #require(Bundle.module.url(forResource: "noise_xx_vectors", withExtension: "json", subdirectory: "Vectors"))
        struct File: Decodable { let vectors: [Vector] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).vectors
    }

    static func bytes(_ hex: String) throws -> [UInt8] { try #require(Hex.decode(hex)) }

    /// Every message of each vector, written by its sender byte for byte and read back by its
    /// receiver: the three handshake messages, then transport messages both ways.
    @Test func publishedVectorsReplayByteForByte() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 2)
        for v in vectors {
            var initiator = NoiseHandshake(role: .initiator, staticKey: try X25519PrivateKey(raw: try Self.bytes(v.init_static)),
                                           prologue: try Self.bytes(v.init_prologue), ephemeral: try X25519PrivateKey(raw: try Self.bytes(v.init_ephemeral)))
            var responder = NoiseHandshake(role: .responder, staticKey: try X25519PrivateKey(raw: try Self.bytes(v.resp_static)),
                                           prologue: try Self.bytes(v.resp_prologue), ephemeral: try X25519PrivateKey(raw: try Self.bytes(v.resp_ephemeral)))
            var ciphers: (i: (send: NoiseCipher, receive: NoiseCipher), r: (send: NoiseCipher, receive: NoiseCipher))?
            for (k, m) in v.messages.enumerated() {
                let payload = try Self.bytes(m.payload), expected = try Self.bytes(m.ciphertext)
                let fromInitiator = k % 2 == 0
                if k < 3 {
                    let written = fromInitiator ? try initiator.writeMessage(payload) : try responder.writeMessage(payload)
                    #expect(written == expected, "\(v.source) message \(k)")
                    let read = fromInitiator ? try responder.readMessage(written) : try initiator.readMessage(written)
                    #expect(read == payload, "\(v.source) message \(k) read back")
                    if k == 2 {
                        #expect(initiator.isComplete && responder.isComplete)
                        #expect(initiator.handshakeHash == responder.handshakeHash)
                        if let h = v.handshake_hash { #expect(initiator.handshakeHash == (try Self.bytes(h))) }
                        #expect(initiator.remoteStatic == (try X25519PrivateKey(raw: try Self.bytes(v.resp_static))).publicKey)
                        #expect(responder.remoteStatic == (try X25519PrivateKey(raw: try Self.bytes(v.init_static))).publicKey)
                        ciphers = (try initiator.transport(), try responder.transport())
                    }
                } else {
                    guard var c = ciphers else { Issue.record("no transport"); break }
                    let written = fromInitiator ? try c.i.send.encrypt(payload) : try c.r.send.encrypt(payload)
                    #expect(written == expected, "\(v.source) transport message \(k)")
                    let read = fromInitiator ? try c.r.receive.decrypt(written) : try c.i.receive.decrypt(written)
                    #expect(read == payload)
                    ciphers = c
                }
            }
        }
    }

    /// A handshake with random keys completes; an altered byte anywhere in any handshake
    /// message, a truncated one, or a message out of turn ends it with a typed error.
    @Test func alteredTruncatedAndOutOfTurnMessagesAreRefused() throws {
        func pair() throws -> (NoiseHandshake, NoiseHandshake) {
            (NoiseHandshake(role: .initiator, staticKey: try X25519PrivateKey(), prologue: Array("datanet/v1".utf8)),
             NoiseHandshake(role: .responder, staticKey: try X25519PrivateKey(), prologue: Array("datanet/v1".utf8)))
        }
        var (i, r) = try pair()
        #expect(throws: NoiseError.outOfTurn) { _ = try r.writeMessage() }
        #expect(throws: NoiseError.outOfTurn) { _ = try i.readMessage([]) }
        let m0 = try i.writeMessage(Array("hello".utf8))
        #expect(throws: NoiseError.truncated(needed: 32, got: 31)) { var r2 = r; _ = try r2.readMessage(Array(m0.prefix(31))) }
        _ = try r.readMessage(m0)
        let m1 = try r.writeMessage(Array("certificate".utf8))
        // Every single-byte change of message 1 (past the clear ephemeral key) fails to decrypt.
        for k in 32..<m1.count {
            var altered = m1
            altered[k] ^= 0x40
            var i2 = i
            #expect(throws: NoiseError.decryptionFailed) { _ = try i2.readMessage(altered) }
        }
        _ = try i.readMessage(m1)
        let m2 = try i.writeMessage()
        var r2 = r
        var altered = m2
        altered[altered.count - 1] ^= 1
        #expect(throws: NoiseError.decryptionFailed) { _ = try r2.readMessage(altered) }
        _ = try r.readMessage(m2)
        #expect(i.isComplete && r.isComplete && i.handshakeHash == r.handshakeHash)
        #expect(throws: NoiseError.outOfTurn) { _ = try i.writeMessage() }
        // A different prologue on one side: the handshake fails at the first encrypted field.
        var (a, b) = try pair()
        b = NoiseHandshake(role: .responder, staticKey: try X25519PrivateKey(), prologue: Array("datanet/v2".utf8))
        _ = try b.readMessage(try a.writeMessage())
        #expect(throws: NoiseError.decryptionFailed) { _ = try a.readMessage(try b.writeMessage()) }
        // Transport: a replayed or reordered message fails (the nonce has moved on).
        var (send, _) = try i.transport()
        var (_, receive) = try r.transport()
        let first = try send.encrypt([1]), second = try send.encrypt([2])
        #expect(throws: NoiseError.decryptionFailed) { var copy = receive; _ = try copy.decrypt(second) }
        #expect(try receive.decrypt(first) == [1])
        #expect(throws: NoiseError.decryptionFailed) { var copy = receive; _ = try copy.decrypt(first) }
        #expect(try receive.decrypt(second) == [2])
        #expect(throws: NoiseError.tooLong(65536)) { _ = try send.encrypt([UInt8](repeating: 0, count: 65520)) }
    }
}
